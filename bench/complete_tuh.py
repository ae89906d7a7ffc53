"""Complete the released TUH encoder, then probe it against itself as released.

The released file holds the blocks and the channel embedding but not the 17 region tokens (the
unified representation is read from them) nor the trained position embedding: every TUH figure
so far read region tokens from initialisation. Here every released weight is frozen and only
those two tensors, with a fresh decoder, are trained by MMM's masked reconstruction (multi-stage
masking) on the transfer benchmark's pretraining pool (everything in ../shared/eeg but eegmat
24-35), with the released model's input (1 s windows, 5-band DE, per-subject standardisation,
noise-filled absent nodes). Then the transfer benchmark's linear probe (logistic regression on the
frozen region and class tokens, C by grouped inner cross-validation, leave one subject out over
eegmat 24-35) reads the released encoder (region tokens from initialisation, seed 0, as the
benchmark's) and the completed one, paired over the 12 subjects. Nothing here is chosen on the
test subjects: the recipe (epochs, decoder depth, learning rate) is fixed below before any probe.

The completed encoder is saved as the registered model ``mmm_base_tuh_completed``
(``--checkpoints DIR`` writes ``DIR/mmm_base_tuh_completed``; set ``MMM_EEG_CHECKPOINTS=DIR``).

    .venv/bin/python bench/complete_tuh.py --checkpoints bench/out/checkpoints   # ~20 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.atomic import atomic_path  # noqa: E402
from mmm_eeg.datasets import default_data_dir, find_checkpoint  # noqa: E402
from mmm_eeg.experiments.transfer import (  # noqa: E402
    TUH,
    benchmark_corpus,
    downstream_task,
    frozen_tokens,
    probe_protocols,
)
from mmm_eeg.experiments.transfer_report import paired_difference  # noqa: E402
from mmm_eeg.model import MMMEncoder, model_card, noise_seed  # noqa: E402
from mmm_eeg.model.loading import load_encoder  # noqa: E402
from mmm_eeg.train.config import PretrainConfig  # noqa: E402
from mmm_eeg.train.pretrain import pretrain, training_summary  # noqa: E402

CARD = model_card("mmm_base_tuh_completed")
#: Fixed before any probe was run: the transfer benchmark's pretraining recipe at the released
#: width, the paper's equal-depth decoder.
RECIPE = {"epochs": 20, "batch_size": 256, "lr": 1e-3, "decoder_depth": 6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/complete_tuh")
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "bench/out/checkpoints")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    args = parser.parse_args()
    started = time.perf_counter()
    released = find_checkpoint(model_card("mmm_base_tuh").checkpoint or "")
    corpus, subjects = benchmark_corpus(args.data, args.out)
    pool = f"subject not in [{', '.join(subjects)}]"
    config = PretrainConfig(
        init=str(released), complete_init=True, select=pool, seed=0,
        normalize=CARD.feature_spec.normalize, **CARD.encoder,
        **{**RECIPE, "epochs": args.epochs},
    )  # fmt: skip
    run = args.out / "run"
    if not (run / "encoder" / "config.json").is_file():
        pretrain(corpus.path, run, config, resume=(run / "checkpoints" / "last.ckpt").is_file())
    reconstruction = training_summary(run)

    rows, targets, _, folds = downstream_task(corpus, subjects, 0)
    context = (corpus, rows, targets, 0)
    with noise_seed(0):  # the region tokens the file lacks, as the transfer benchmark draws them
        before = load_encoder(str(released), corpus.topology, **TUH.architecture)
    completed = MMMEncoder.from_pretrained(run / "encoder")
    check_released_weights_unchanged(before, completed)
    probes = {}
    for name, encoder in (("released", before), ("completed", completed)):
        with noise_seed(TUH.seed):
            tokens = frozen_tokens(encoder, corpus, rows, replace(TUH, init=str(released)))
        probes[name] = probe_protocols(tokens, {"loso": folds}, context)["balanced_accuracy"]
        print(name, round(probes[name]["mean"], 3), flush=True)
    paired = paired_difference(probes["completed"], probes["released"])
    per = [probes["completed"]["per_subject"][s] - probes["released"]["per_subject"][s]
           for s in probes["released"]["per_subject"]]  # fmt: skip
    paired["wilcoxon_p"] = float(wilcoxon(per).pvalue) if any(per) else 1.0
    destination = args.checkpoints / "mmm_base_tuh_completed"
    metadata = {"completed_from": released.name, "recipe": RECIPE, "pool": pool}
    completed.replace(feature_spec=CARD.feature_spec).save_pretrained(destination, metadata)
    result = {
        "recipe": {**RECIPE, "epochs": args.epochs},
        "pool": pool,
        "trained": ["pos_embed", "region_tokens", "a fresh decoder"],
        "reconstruction": reconstruction,
        "probe": probes,
        "completed_minus_released": paired,
        "saved": str(destination),
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    with atomic_path(ROOT / "bench" / "results" / "complete_tuh.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    update_benchmarks_md("complete_tuh", markdown(result))
    print(markdown(result))


def check_released_weights_unchanged(released: MMMEncoder, completed: MMMEncoder) -> None:
    """Every tensor the file held is bit-identical after completion (they were frozen)."""
    ours, theirs = released.state_dict(), completed.state_dict()
    learned = {"region_tokens", "pos_embed"}
    changed = [k for k in ours if k not in learned and not np.array_equal(ours[k], theirs[k])]
    if changed:
        raise AssertionError(f"released weights changed during completion: {changed}")


def markdown(r: dict) -> str:
    rec, p, d = r["reconstruction"], r["probe"], r["completed_minus_released"]
    return "\n".join(
        [
            f"Measured with `python bench/complete_tuh.py` ({r['runtime_s']:.0f} s): the "
            "released encoder's region tokens and position embedding trained for "
            f"{r['recipe']['epochs']} epochs (batch {r['recipe']['batch_size']}, lr "
            f"{r['recipe']['lr']}, a fresh decoder of {r['recipe']['decoder_depth']} blocks) on "
            "the pool, every released weight frozen (checked bit-identical after). Held-out "
            "reconstruction "
            f"{rec['best_val_loss']:.3f} against {rec['val_baseline']:.3f} for predicting the band "
            "mean.",
            "",
            "| encoder | LOSO linear probe, eegmat 24-35 (mean ± std) |",
            "|---|---|",
            f"| released (region tokens from initialisation) | {p['released']['mean']:.3f} ± "
            f"{p['released']['std']:.3f} |",
            f"| completed (`mmm_base_tuh_completed`) | {p['completed']['mean']:.3f} ± "
            f"{p['completed']['std']:.3f} |",
            "",
            f"Completed minus released: {d['mean']:+.3f} ± {d['std']:.3f}, better for "
            f"{d['better']}/{d['n']} subjects, Wilcoxon p = {d['wilcoxon_p']:.3f}.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
