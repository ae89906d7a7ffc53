"""The full cross-montage transfer benchmark; records its table in docs/benchmarks.md.

    .venv/bin/python bench/transfer.py     # 4,789 s measured on 2 cores shared with other jobs

Same code as ``mmm-eeg benchmark transfer`` (the full budget); copies ``results.json`` to
docs/results/transfer.json.
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
from mmm_eeg.experiments.transfer import (  # noqa: E402
    results_markdown,
    run_transfer_benchmark,
    transfer_plots,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("MMM_EEG_DATA", ROOT.parent / "shared" / "eeg"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "transfer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="Rewrite the tables and docs from OUT/results.json without rerunning.",
    )
    args = parser.parse_args()
    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
        transfer_plots(args.out, result)
    else:
        result = run_transfer_benchmark(args.data, args.out, quick=False, seed=args.seed)
    target = ROOT / "docs" / "results" / "transfer.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.out / "results.json", target)
    plots = (
        "methods.png",
        "accuracy_vs_channels.png",
        "pretraining_reconstruction.png",
        "probe_vs_pretraining_epochs.png",
    )
    for plot in plots:
        if (args.out / "plots" / plot).is_file():
            shutil.copy(args.out / "plots" / plot, target.parent / f"transfer_{plot}")
    given = [a for a in sys.argv[1:] if a != "--render-only"]
    command = "python bench/transfer.py " + " ".join(given)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    rendered = " (tables re-rendered from its results.json with `--render-only`)"
    table = (
        f"Measured {date} with `{command.strip()}`{rendered if args.render_only else ''}.\n\n"
        + results_markdown(result)
    )
    update_benchmarks_md("transfer", table)
    print(table)


if __name__ == "__main__":
    main()
