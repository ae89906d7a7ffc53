"""``python -m mmm_eeg`` runs the ``mmm-eeg`` command."""

from mmm_eeg.cli import main

main()
