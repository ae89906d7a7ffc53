"""The ``mmm-eeg`` command: a thin layer over the Python API.

One module per group of commands (:mod:`~mmm_eeg.cli.data`, :mod:`~mmm_eeg.cli.training`,
:mod:`~mmm_eeg.cli.models`); :mod:`~mmm_eeg.cli.common` holds the app and the error handling,
:mod:`~mmm_eeg.cli.options` the config-to-flags bridge. Commands import what they need when they
run, so ``mmm-eeg --help`` starts fast.
"""

from mmm_eeg.cli import data, models, training  # noqa: F401  (they register the commands)
from mmm_eeg.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``mmm-eeg`` console script."""
    app()
