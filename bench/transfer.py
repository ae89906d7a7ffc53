"""The full cross-montage transfer benchmark; records its table in docs/benchmarks.md.

    .venv/bin/python bench/transfer.py     # 4,789 s measured on 2 cores shared with other jobs

Same code as ``mmm-eeg benchmark transfer`` (the full budget); copies ``results.json`` to
docs/results/transfer.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import experiment_main  # noqa: E402
from mmm_eeg.experiments.transfer import run_transfer_benchmark  # noqa: E402
from mmm_eeg.experiments.transfer_report import results_markdown, transfer_plots  # noqa: E402

if __name__ == "__main__":
    experiment_main(
        "transfer",
        __doc__,
        lambda data, out, seed: run_transfer_benchmark(data, out, quick=False, seed=seed),
        results_markdown,
        transfer_plots,
        (
            "methods.png",
            "accuracy_vs_channels.png",
            "pretraining_reconstruction.png",
            "probe_vs_pretraining_epochs.png",
        ),
    )
