"""Compute nothing for absent electrodes: pretraining with absent nodes out of the sequence.

eegmat (all 36 subjects, 19 channels of the 62 nodes: 37 tokens instead of 80) is pretrained
with the released architecture (width 64, 6 + 6 blocks, batch 512, multi-stage masking, absent
nodes excluded) twice per seed: on the full 80-token sequence and with ``compact=True``
(``pretrain --compact``: each batch grouped by its present nodes, each group on its own tokens).
The runs alternate (seed 0 full, seed 0 compact, seed 1 full, seed 1 compact) so that load on
this shared machine hits both alike. Reported: wall time per epoch (the whole ``pretrain`` call,
validation included, over its epochs) and the held-out reconstruction loss, beside the spread
between the two seeds of the full path (the seed noise).

    .venv/bin/python bench/compact.py            # ~15 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.atomic import atomic_path  # noqa: E402
from mmm_eeg.corpus.build import build_corpus  # noqa: E402
from mmm_eeg.datasets import default_data_dir  # noqa: E402
from mmm_eeg.io.sources import discover_sources  # noqa: E402
from mmm_eeg.train.config import PretrainConfig  # noqa: E402
from mmm_eeg.train.pretrain import pretrain, training_summary  # noqa: E402

RECIPE = {"dim": 64, "depth": 6, "decoder_depth": 6, "heads": 8, "batch_size": 512,
          "normalize": "subject", "absent": "exclude"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/compact")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="1 epoch, one seed (a check)")
    args = parser.parse_args()
    corpus = args.out / "corpus"
    if not (corpus / "corpus.json").is_file():
        sources, skipped = discover_sources([args.data / "eegmat" / "manifest.csv"])
        build_corpus(sources, corpus, skipped=skipped)
    epochs, seeds = (1, (0,)) if args.quick else (args.epochs, (0, 1))
    runs = {}
    for seed in seeds:
        for compact in (False, True):
            name = f"{'compact' if compact else 'full'}_seed{seed}"
            out = args.out / name
            shutil.rmtree(out, ignore_errors=True)
            config = PretrainConfig(**RECIPE, epochs=epochs, seed=seed, compact=compact)
            started = time.perf_counter()
            pretrain(corpus, out, config)
            seconds = time.perf_counter() - started
            runs[name] = {"epoch_s": seconds / epochs, **training_summary(out)}
            print(name, runs[name], flush=True)
    summary = {
        "recipe": RECIPE,
        "epochs": epochs,
        "runs": runs,
        "speedup_per_seed": {
            s: runs[f"full_seed{s}"]["epoch_s"] / runs[f"compact_seed{s}"]["epoch_s"] for s in seeds
        },
        "quick": args.quick,
    }
    if args.quick:
        print(markdown(summary))
        return
    with atomic_path(ROOT / "bench" / "results" / "compact.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    update_benchmarks_md("compact", markdown(summary))
    print(markdown(summary))


def markdown(r: dict) -> str:
    runs = r["runs"]
    lines = [
        f"Measured with `python bench/compact.py` (2 cores): eegmat, 36 subjects of 19 channels, "
        f"pretrained {r['epochs']} epochs at width 64, 6 + 6 blocks, batch 512, absent nodes "
        "excluded; the full 80-token sequence against `--compact` (37 tokens), runs alternating.",
        "",
        "| run | s per epoch | held-out loss (best) | last | predicting the mean |",
        "|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        lines.append(
            f"| {name} | {run['epoch_s']:.1f} | {run['best_val_loss']:.4f} | "
            f"{run['last_val_loss']:.4f} | {run['val_baseline']:.4f} |"
        )
    speed = ", ".join(f"seed {s}: {v:.2f}×" for s, v in r["speedup_per_seed"].items())
    lines += ["", f"Compact against full, per epoch: {speed}."]
    seeds = sorted({name.split("seed")[1] for name in runs})
    if len(seeds) > 1:
        full = [runs[f"full_seed{s}"]["best_val_loss"] for s in seeds]
        gaps = [abs(runs[f"compact_seed{s}"]["best_val_loss"] - runs[f"full_seed{s}"][
            "best_val_loss"]) for s in seeds]  # fmt: skip
        lines.append(
            "Held-out loss, compact against full of the same seed: largest difference "
            f"{max(gaps):.4f}; between the two seeds of the full path: "
            f"{abs(full[0] - full[1]):.4f}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
