"""Control for the transfer benchmark: logistic regression on each normalisation of the input.

Same downstream subjects (eegmat 24-35), leave-one-subject-out, C = 1, on each of the corpus's
normalisations (per recording or per subject; per band or per node and band). Shows how much of
a model's accuracy the normalisation alone gives, and that per recording is transductive here.

    .venv/bin/python bench/normalization_control.py --corpus bench/out/transfer/corpus
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmm_eeg.corpus import Corpus  # noqa: E402
from mmm_eeg.experiments.transfer import DOWNSTREAM  # noqa: E402


def loso(z: np.ndarray, y: np.ndarray, subjects: np.ndarray) -> tuple[float, float]:
    scores = []
    for s in np.unique(subjects):
        test = subjects == s
        model = LogisticRegression(C=1.0, max_iter=3000).fit(z[~test], y[~test])
        scores.append(balanced_accuracy_score(y[test], model.predict(z[test])))
    return float(np.mean(scores)), float(np.std(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=ROOT / "bench" / "out" / "transfer" / "corpus"
    )
    corpus = Corpus(parser.parse_args().corpus)
    index = corpus.index
    rows = np.flatnonzero(index["subject"].isin(DOWNSTREAM).to_numpy())
    subjects = index["subject"].to_numpy()[rows]
    y = (index["label"].to_numpy()[rows] == "arithmetic").astype(int)
    present = corpus.present[rows][0]
    print("| input to logistic regression | balanced accuracy (LOSO, 12 subjects) |")
    print("|---|---|")
    for mode in ("recording", "subject", "recording-node", "subject-node"):
        x, _ = corpus.read(rows, mode)
        z = x[:, present].reshape(len(rows), -1)
        mean, std = loso(z, y, subjects)
        print(f"| corpus normalisation `{mode}` | {mean:.3f} ± {std:.3f} |")


if __name__ == "__main__":
    main()
