"""The released TUH encoder's frozen features under each reading of its input.

Its authors did not release their TUH preprocessing (docs/design.md, "The released checkpoint's
input"). This measures the linear probe of the benchmark (logistic regression on the frozen
region and class tokens, C by grouped inner cross-validation, leave-one-subject-out over eegmat
24-35) for standardisation per band (the reference's SEED loader) or per node and band, with
absent electrodes excluded from attention or filled with noise (the paper). It is a diagnostic
measured on the test subjects: the benchmark's TUH input is fixed by the reference
(``mmm_eeg.experiments.transfer.TUH``), not chosen from this table.

    .venv/bin/python bench/tuh_input.py       # after bench/transfer.py; ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.atomic import atomic_path  # noqa: E402
from mmm_eeg.corpus import Corpus  # noqa: E402
from mmm_eeg.corpus.labels import label_targets  # noqa: E402
from mmm_eeg.experiments.transfer import DOWNSTREAM, TUH, frozen_tokens, probe_protocols  # noqa: E402
from mmm_eeg.model import load_physiopro_encoder, noise_seed  # noqa: E402
from mmm_eeg.train.protocols import make_folds  # noqa: E402
from mmm_eeg.train.selection import select_windows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench/out/transfer/corpus")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=ROOT.parent / "shared/checkpoints/tuh_pretrained_encoder_base.pt",
    )
    args = parser.parse_args()
    corpus = Corpus(args.corpus)
    rows = select_windows(corpus.index, f"subject in [{', '.join(DOWNSTREAM)}]")
    rows = rows[corpus.index["label"].notna().to_numpy()[rows]]
    targets, _ = label_targets(corpus.index, rows)
    folds = make_folds(corpus.index, rows, "loso", DOWNSTREAM)
    results = {}
    for normalize in ("subject", "subject-node"):
        for absent in ("noise", "exclude"):
            torch.manual_seed(0)  # the region tokens, absent from the file, as the benchmark's
            encoder = load_physiopro_encoder(args.checkpoint)
            encoder.absent = absent
            config = replace(TUH, normalize=normalize, absent=absent)
            with noise_seed(0):
                features = frozen_tokens(encoder, corpus, rows, config)
            summary = probe_protocols(features, {"loso": folds}, (corpus, rows, targets, 0))
            results[f"{normalize} / {absent}"] = summary["balanced_accuracy"]
            print(normalize, absent, summary["balanced_accuracy"]["mean"], flush=True)
    with atomic_path(ROOT / "bench" / "results" / "tuh_input.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    lines = [
        "Measured with `python bench/tuh_input.py` (a diagnostic on the test subjects; the "
        "benchmark's TUH input is the reference's, first row).",
        "",
        "| standardisation / absent electrodes | LOSO linear probe (12 subjects) |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v['mean']:.3f} ± {v['std']:.3f} |" for k, v in results.items()]
    update_benchmarks_md("tuh_input", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
