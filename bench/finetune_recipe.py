"""Choose the fine-tuning recipe on training-side subjects only (never the test subjects).

eegmat subjects 00-23 are the transfer benchmark's pretraining pool (their labels unused
there) and never its test subjects (24-35). Here they are labelled: subjects 00-15 train,
16-17 select the epoch, 18-23 score each recipe. Recipes: the benchmark's defaults, layer-wise
learning-rate decay, a frozen-encoder warm-up, and both; for the pool encoder of a finished
``bench/transfer.py`` run and for the released TUH encoder (as its authors fine-tuned it).

    .venv/bin/python bench/finetune_recipe.py      # after bench/transfer.py; ~20 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.atomic import atomic_path  # noqa: E402
from mmm_eeg.corpus import Corpus  # noqa: E402
from mmm_eeg.corpus.labels import label_targets  # noqa: E402
from mmm_eeg.experiments.transfer import TUH, settings  # noqa: E402
from mmm_eeg.train.finetune import train_fold  # noqa: E402
from mmm_eeg.train.protocols import make_folds  # noqa: E402
from mmm_eeg.train.selection import select_windows  # noqa: E402

RECIPES = {
    "default": {},
    "layer_decay_0.65": {"layer_decay": 0.65},
    "frozen_warm_up_3": {"freeze_epochs": 3},
    "both": {"layer_decay": 0.65, "freeze_epochs": 3},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "bench" / "out" / "transfer")
    parser.add_argument("--checkpoint", type=Path, default=None)
    args = parser.parse_args()
    shared = ROOT.parent / "shared" / "checkpoints"
    checkpoint = args.checkpoint or shared / "tuh_pretrained_encoder_base.pt"
    corpus = Corpus(args.run / "corpus")
    selection = "subject in [" + ", ".join(f"eegmat-{i:02d}" for i in range(24)) + "]"
    rows = select_windows(corpus.index, selection)
    rows = rows[corpus.index["label"].notna().to_numpy()[rows]]
    targets, names = label_targets(corpus.index, rows)
    scored = [f"eegmat-{i}" for i in range(18, 24)]
    fold = make_folds(corpus.index, rows, "holdout", scored, val_subjects=2, seed=0)[0]
    budget = settings(quick=False, seed=0)  # the full benchmark's budget
    base = {
        "mmm_pool": replace(budget.finetune, init=str(args.run / "pretrain")),
        "mmm_tuh": replace(
            TUH, init=str(checkpoint), epochs=budget.tuh_epochs, patience=budget.finetune.patience
        ),
    }
    results: dict[str, dict[str, dict]] = {}
    for model, config in base.items():
        for recipe, change in RECIPES.items():
            if model == "mmm_tuh" and recipe not in ("default", "both"):
                continue  # the large encoder: the two ends only, to fit the budget
            out = ROOT / "bench" / "out" / "recipe" / model / recipe
            r = train_fold(corpus, fold, targets, names, replace(config, **change), out)
            values = list(r["test_per_subject"].values())
            results.setdefault(model, {})[recipe] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "per_subject": r["test_per_subject"],
                "val": r["best_epoch_val_balanced_accuracy"],
            }
            print(model, recipe, results[model][recipe]["mean"], flush=True)
    target = ROOT / "bench" / "results" / "finetune_recipe.json"
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    lines = [
        "Measured with `python bench/finetune_recipe.py`: trained on eegmat 00-15, epoch chosen "
        "on 16-17, scored on 18-23 (training-side subjects; the benchmark's test subjects are "
        "24-35).",
        "",
        "| encoder | recipe | balanced accuracy (6 subjects) | validation (epoch selection) |",
        "|---|---|---|---|",
    ]
    for model, recipes in results.items():
        for recipe, r in recipes.items():
            lines.append(
                f"| {model} | {recipe} | {r['mean']:.3f} ± {r['std']:.3f} | {r['val']:.3f} |"
            )
    update_benchmarks_md("finetune_recipe", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
