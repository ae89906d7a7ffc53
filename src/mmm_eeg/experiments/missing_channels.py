"""Accuracy with fewer electrodes than trained on: subsets of the 19 channels, a Muse-like 4."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mmm_eeg.baselines import logistic_probe
from mmm_eeg.corpus import Corpus
from mmm_eeg.montage import template_position
from mmm_eeg.train.metrics import per_subject_balanced_accuracy

if TYPE_CHECKING:
    from mmm_eeg.experiments.transfer import DEFeatures

MUSE_SITES = ("TP9", "AF7", "AF8", "TP10")


def channel_subsets(
    corpus: Corpus, rows: np.ndarray, seeds: int, seed: int
) -> dict[str, list[tuple[str, ...]]]:
    """Node subsets to keep: random 12, 8, 4 of the 19 (``seeds`` each) and the Muse-like 4."""
    present = corpus.present[rows[:1]][0]
    nodes = [corpus.topology.nodes[i] for i in np.flatnonzero(present)]
    rng = np.random.default_rng(seed)
    out = {
        str(k): [tuple(sorted(rng.choice(nodes, k, replace=False))) for _ in range(seeds)]
        for k in (12, 8, 4)
    }
    positions = {n: corpus.topology.positions[corpus.topology.index(n)] for n in nodes}
    muse = []
    for site in MUSE_SITES:  # nearest of the recording's electrodes to each Muse electrode
        target = template_position(site)
        muse.append(
            min(
                (n for n in nodes if n not in muse),
                key=lambda n: np.linalg.norm(positions[n] - target),
            )
        )
    out["muse4"] = [tuple(muse)]
    return out


@torch.no_grad()
def missing_channels_mmm(
    corpus, models, folds, targets, subsets, normalize: str
) -> dict[str, float]:
    """Mean over folds, subsets and test subjects of balanced accuracy with fewer channels.

    The noise that fills absent nodes (under that policy) comes from torch's generator: call it
    inside :func:`~mmm_eeg.model.noise_seed`.
    """
    subject_of = corpus.index["subject"].astype(str).to_numpy()
    return {
        key: _subset_accuracy(corpus, models, folds, targets, keeps, normalize, subject_of)
        for key, keeps in subsets.items()
    }


def _subset_accuracy(corpus, models, folds, targets, keeps, normalize, subject_of) -> float:
    scores = []
    for model, fold in zip(models, folds, strict=True):
        x, present = corpus.read(fold.test, normalize)  # type: ignore[arg-type]
        for keep in keeps:
            p = present & corpus.topology.node_mask(keep)
            xs = np.where(p[..., None], x, 0.0).astype(np.float32)
            pred = model.eval()(torch.from_numpy(xs), torch.from_numpy(p)).argmax(-1).numpy()
            found = per_subject_balanced_accuracy(targets[fold.test], pred, subject_of[fold.test])
            scores.extend(found.values())
    return float(np.mean(scores))


def de_missing_channels(de: DEFeatures, folds, context, subsets) -> dict[str, float]:
    """DE + logistic regression with fewer channels: missing features imputed with 0."""
    corpus, rows, targets, seed = context
    position = {r: i for i, r in enumerate(rows)}
    subject_of = corpus.index["subject"].astype(str).to_numpy()
    nodes = [corpus.topology.nodes[i] for i in de.nodes]
    fitted = []
    for fold in folds:
        train = np.concatenate([fold.train, fold.val])
        features = de.matrix()[[position[r] for r in train]]
        fitted.append((logistic_probe(features, targets[train], subject_of[train], seed), fold))
    missing = {}
    for key, keeps in subsets.items():
        scores = []
        for keep in keeps:
            reduced = de.matrix(np.array([n in keep for n in nodes]))
            for model, fold in fitted:
                pred = model.predict(reduced[[position[r] for r in fold.test]])
                found = per_subject_balanced_accuracy(
                    targets[fold.test], pred, subject_of[fold.test]
                )
                scores += list(found.values())
        missing[key] = float(np.mean(scores))
    return missing
