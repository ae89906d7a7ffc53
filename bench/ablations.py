"""The paper's ablations, full budget; records its tables in docs/benchmarks.md.

    .venv/bin/python bench/ablations.py     # 2,589 s measured on 2 cores

Same code as ``mmm-eeg benchmark ablations`` (the full budget); copies ``results.json`` to
docs/results/ablations.json and the figures to docs/results/ablations_*.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import experiment_main  # noqa: E402
from mmm_eeg.experiments.ablations import (  # noqa: E402
    ablation_plots,
    ablations_markdown,
    run_ablations,
)

FIGURES = (
    "\n![Reconstruction against the mask ratio](results/ablations_reconstruction_vs_mask_ratio.png)"
    "\n![Accuracy per variant](results/ablations_variants.png)\n"
)

if __name__ == "__main__":
    experiment_main(
        "ablations",
        __doc__,
        lambda data, out, seed: run_ablations(data, out, quick=False, seed=seed),
        ablations_markdown,
        ablation_plots,
        ("reconstruction_vs_mask_ratio.png", "variants.png"),
        FIGURES,
    )
