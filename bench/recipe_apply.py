"""Apply the fine-tuning recipe chosen by ``bench/finetune_recipe.py`` to the test subjects, once.

The recipe with the best balanced accuracy on the training-side selection subjects (eegmat
18-23) is used to fine-tune the transfer benchmark's pool encoder under the benchmark's own
leave-one-subject-out folds over eegmat 24-35; the result is paired with the benchmark's other
methods (``docs/results/transfer.json``). Nothing here looks at the test subjects before the
recipe is fixed.

    .venv/bin/python bench/recipe_apply.py     # after transfer.py and finetune_recipe.py
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.finetune_recipe import RECIPES  # noqa: E402
from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.atomic import atomic_path  # noqa: E402
from mmm_eeg.corpus import Corpus  # noqa: E402
from mmm_eeg.corpus.labels import label_targets  # noqa: E402
from mmm_eeg.experiments.transfer import DOWNSTREAM, settings  # noqa: E402
from mmm_eeg.experiments.transfer_report import (  # noqa: E402
    paired_difference,
    per_subject_summary,
)
from mmm_eeg.train.finetune import train_fold  # noqa: E402
from mmm_eeg.train.protocols import make_folds  # noqa: E402
from mmm_eeg.train.selection import select_windows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "bench" / "out" / "transfer")
    args = parser.parse_args()
    chosen = json.loads((ROOT / "bench/results/finetune_recipe.json").read_text())["mmm_pool"]
    recipe = max(chosen, key=lambda k: chosen[k]["mean"])
    corpus = Corpus(args.run / "corpus")
    downstream = f"subject in [{', '.join(DOWNSTREAM)}]"
    rows = select_windows(corpus.index, downstream)
    rows = rows[corpus.index["label"].notna().to_numpy()[rows]]
    targets, names = label_targets(corpus.index, rows)
    folds = make_folds(corpus.index, rows, "loso", DOWNSTREAM, seed=0)
    config = replace(
        settings(quick=False, seed=0).finetune,
        init=str(args.run / "pretrain"),
        select=downstream,
        **RECIPES[recipe],
    )
    out = ROOT / "bench" / "out" / "recipe_apply"
    results = []
    for fold in folds:  # a rerun reuses the folds already trained
        done = out / "folds" / fold.name / "metrics.json"
        if done.is_file():
            results.append(json.loads(done.read_text()))
        else:
            results.append(train_fold(corpus, fold, targets, names, config, out))
    summary = per_subject_summary(results)
    methods = json.loads((ROOT / "docs/results/transfer.json").read_text())["methods"]
    paired = {
        name: paired_difference(summary, methods[name]["balanced_accuracy"])
        for name in ("de_logreg", "riemann", "mmm_pool")
    }
    result = {"recipe": recipe, "change": RECIPES[recipe], "loso": summary, "paired": paired}
    with atomic_path(ROOT / "bench" / "results" / "recipe_apply.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    lines = [
        f"Measured with `python bench/recipe_apply.py`: recipe `{recipe}` ({RECIPES[recipe]}), "
        "chosen on eegmat 18-23, applied once to the pool encoder under the benchmark's LOSO "
        f"folds: **{summary['mean']:.3f} ± {summary['std']:.3f}** (12 subjects).",
        "",
        "| against | mean difference ± std | subjects better |",
        "|---|---|---|",
    ]
    lines += [
        f"| {k} | {d['mean']:+.3f} ± {d['std']:.3f} | {d['better']}/{d['n']} |"
        for k, d in paired.items()
    ]
    update_benchmarks_md("recipe_apply", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
