"""The full cross-montage transfer benchmark; records its table in docs/benchmarks.md.

    .venv/bin/python bench/transfer.py            # about 25 minutes on 2 cores

Same code as ``mmm-eeg benchmark transfer`` (the full budget); copies ``results.json`` to
docs/results/transfer.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.benchmark import results_markdown, run_transfer_benchmark  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("MMM_EEG_DATA", ROOT.parent / "shared" / "eeg"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "transfer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
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
    command = "python bench/transfer.py " + " ".join(sys.argv[1:])
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    table = f"Measured {date} with `{command.strip()}`.\n\n" + results_markdown(result)
    update_benchmarks_md("transfer", table)
    print(table)


if __name__ == "__main__":
    main()
