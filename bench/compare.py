"""`benchmark compare` on eegmat rest vs arithmetic, checked against the transfer benchmark.

Runs :func:`mmm_eeg.experiments.compare.run_compare` on the transfer benchmark's corpus,
restricted to its 12 test subjects (eegmat 24-35), and checks that the methods both benchmarks
share give the committed transfer figures (``docs/results/transfer.json``): DE + logistic
regression, the Riemannian model and the released TUH encoder's linear probe. The completed TUH
encoder (``bench/complete_tuh.py``) is included when ``--checkpoints`` holds it. The same run
draws the few-label curve over training subjects (``--curve subjects``: each leave-one-subject-out
fold's 11 training subjects cut to 2, 4 or 8 random ones, the same test subject).

    .venv/bin/python bench/compare.py --checkpoints bench/out/checkpoints   # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.atomic import atomic_path  # noqa: E402
from mmm_eeg.datasets import default_data_dir  # noqa: E402
from mmm_eeg.experiments.compare import report_markdown, run_compare  # noqa: E402
from mmm_eeg.experiments.transfer import benchmark_corpus  # noqa: E402

#: compare's method -> (transfer benchmark's method, its column)
SHARED = {
    "de_logreg": ("de_logreg", "balanced_accuracy"),
    "riemann": ("riemann", "balanced_accuracy"),
    "mmm_base_tuh": ("mmm_tuh", "linear_probe"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/compare")
    parser.add_argument("--checkpoints", type=Path, default=None)
    args = parser.parse_args()
    corpus, subjects = benchmark_corpus(args.data, args.out)
    select = f"subject in [{', '.join(subjects)}]"
    result = run_compare(corpus.path, args.out / "eegmat", select=select,
                         checkpoint_dir=args.checkpoints, curve="subjects")  # fmt: skip
    committed = json.loads((ROOT / "docs/results/transfer.json").read_text())["methods"]
    agreement = {
        ours: {
            "compare": result["methods"][ours]["balanced_accuracy"]["mean"],
            "transfer": committed[theirs][column]["mean"],
        }
        for ours, (theirs, column) in SHARED.items()
        if ours in result["methods"]
    }
    for row in agreement.values():
        row["difference"] = row["compare"] - row["transfer"]
    with atomic_path(ROOT / "bench" / "results" / "compare.json") as tmp:
        tmp.write_text(json.dumps({"eegmat": result, "agreement": agreement}, indent=2))
    lines = [
        "Measured with `python bench/compare.py --checkpoints bench/out/checkpoints` "
        f"({result['runtime_s']:.0f} s): `mmm-eeg benchmark compare` on eegmat rest vs "
        "arithmetic, the transfer benchmark's 12 test subjects.",
        "",
        report_markdown(result).replace(str(corpus.path), "bench/out/compare/corpus"),
        "Agreement with the committed transfer benchmark (the methods both run):",
        "",
        "| method | compare | transfer benchmark | difference |",
        "|---|---|---|---|",
        *[
            f"| {name} | {row['compare']:.4f} | {row['transfer']:.4f} | {row['difference']:+.4f} |"
            for name, row in agreement.items()
        ],
        "",
    ]
    update_benchmarks_md("compare", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
