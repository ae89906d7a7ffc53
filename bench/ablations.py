"""The paper's ablations, full budget; records its tables in docs/benchmarks.md.

    .venv/bin/python bench/ablations.py     # about an hour on 2 cores

Same code as ``mmm-eeg benchmark ablations`` (the full budget); copies ``results.json`` to
docs/results/ablations.json and the figures to docs/results/ablations_*.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.experiments.ablations import (  # noqa: E402
    ablation_plots,
    ablations_markdown,
    run_ablations,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("MMM_EEG_DATA", ROOT.parent / "shared" / "eeg"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ablations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="Rewrite the tables and docs from OUT/results.json without rerunning.",
    )
    args = parser.parse_args()
    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
        ablation_plots(args.out, result)
    else:
        result = run_ablations(args.data, args.out, quick=False, seed=args.seed)
    target = ROOT / "docs" / "results" / "ablations.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.out / "results.json", target)
    for plot in ("reconstruction_vs_mask_ratio.png", "variants.png"):
        shutil.copy(args.out / "plots" / plot, target.parent / f"ablations_{plot}")
    given = [a for a in sys.argv[1:] if a != "--render-only"]
    command = "python bench/ablations.py " + " ".join(given)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    rendered = " (tables re-rendered from its results.json with `--render-only`)"
    table = (
        f"Measured {date} with `{command.strip()}`{rendered if args.render_only else ''}.\n\n"
        + ablations_markdown(result)
        + "\n![Reconstruction against the mask ratio]"
        "(results/ablations_reconstruction_vs_mask_ratio.png)\n"
        "![Accuracy per variant](results/ablations_variants.png)\n"
    )
    update_benchmarks_md("ablations", table)
    print(table)


if __name__ == "__main__":
    main()
