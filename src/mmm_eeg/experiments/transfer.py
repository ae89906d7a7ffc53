"""The cross-montage transfer benchmark (``mmm-eeg benchmark transfer``), all via the public API.

1. One corpus from a folder laid out like ``../shared/eeg``: the pretraining pool is eegmat
   subjects 00-23 (labels unused), eegmmidb and muse_n170; the downstream set is eegmat
   subjects 24-35, rest vs arithmetic.
2. MMM pretrained on the pool (multi-stage masking), with encoder snapshots along the way.
3. Leave-one-subject-out over the downstream subjects (validation from the training side
   only), the same folds for every method. Classical: DE + logistic regression; Riemannian
   tangent space + logistic regression (pyriemann). MMM from scratch, from the pool, from the
   released TUH checkpoint: fine-tuned, and as a linear probe (scikit-learn logistic
   regression on the frozen encoder's flattened region and class tokens, C chosen by grouped
   inner cross-validation on the training subjects: :func:`mmm_eeg.baselines.logistic_probe`).
4. Low-label: trained on 3 subjects (fixed rotation), validated on 1, tested on the rest.
5. Within-subject (the paper's own kind of protocol): per subject, the first 70 % of each
   recording trains (C chosen on time blocks), the last 20 % tests; for the methods with a
   logistic regression (classical and MMM probes).
6. Missing electrodes: test recordings reduced to 12, 8, 4 of their 19 channels (random subsets,
   several seeds) and to the 4 nearest a Muse headband, without retraining. DE + logistic
   regression imputes a missing channel's features with 0 after per-subject standardisation,
   i.e. with that subject's mean (mean imputation); MMM excludes absent nodes (or, for the TUH
   encoder, fills them with noise as its authors did); the Riemannian model cannot read
   another montage without retraining and is left out.
7. Downstream probe accuracy against pretraining epochs (from the snapshots).

Every method reads DE standardised per subject, per node and band (``NORMALIZE``), except the
TUH encoder, which reads the input its authors fine-tuned it on (``TUH``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mmm_eeg.atomic import atomic_path, check_output_folder, write_json
from mmm_eeg.baselines import band_covariances, logistic_probe, recentred_tangent_space
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.corpus.labels import label_targets
from mmm_eeg.errors import UserInputError
from mmm_eeg.experiments.missing_channels import (
    channel_subsets,
    de_missing_channels,
    missing_channels_mmm,
)
from mmm_eeg.experiments.transfer_report import (
    per_subject_summary,
    results_markdown,
    summarize_subjects,
    transfer_plots,
)
from mmm_eeg.io.readers import read_recording
from mmm_eeg.io.sources import discover_sources
from mmm_eeg.model import MMMClassifier, MMMEncoder, model_card, noise_seed
from mmm_eeg.model.loading import load_encoder
from mmm_eeg.train.config import FinetuneConfig, PretrainConfig
from mmm_eeg.train.finetune import train_fold
from mmm_eeg.train.metrics import per_subject_balanced_accuracy
from mmm_eeg.train.pretrain import pretrain, training_summary
from mmm_eeg.train.protocols import Fold, make_folds
from mmm_eeg.train.selection import select_windows
from mmm_eeg.windows import PreprocessConfig

logger = logging.getLogger(__name__)

DOWNSTREAM = [f"eegmat-{i:02d}" for i in range(24, 36)]
METHODS = ("de_logreg", "riemann", "mmm_scratch", "mmm_pool", "mmm_tuh")

# Every method reads the same input: DE standardised over each subject's recordings, per node
# and band (per recording would be transductive per condition here, as each eegmat recording
# holds one condition: bench/normalization_control.py). Per node and band is what a
# StandardScaler fitted per subject does; it beat per band for DE + logistic regression by
# +0.04 (docs/benchmarks.md). Channel dropout (fixed a priori: half the training windows keep
# 2 to all of their nodes) teaches the fine-tuned models to work with fewer electrodes.
NORMALIZE = "subject-node"
PRETRAIN = PretrainConfig(batch_size=256, lr=1e-3, normalize=NORMALIZE)
FINETUNE = FinetuneConfig(
    batch_size=128, normalize=NORMALIZE, channel_dropout=0.5, channel_dropout_min=2
)
# The released encoder as its authors fine-tuned it (PhysioPro's mmm_emotion_from_ckpt.yml):
# one learning rate, 5e-5, for every weight, weight decay 0.005, batch 32; input z-scored per
# subject and band (its SEED loader's "gaussian"); absent electrodes filled with standard
# normal noise (the paper's appendix), every node attended.
_TUH_CARD = model_card("mmm_base_tuh")  # the released model's architecture and input
TUH = replace(
    FINETUNE,
    lr=5e-5,
    encoder_lr_scale=1.0,
    weight_decay=0.005,
    batch_size=32,
    normalize=_TUH_CARD.feature_spec.normalize,
    **_TUH_CARD.encoder,
)
#: A corpus that keeps each window's signal for raw tokens: 100 Hz, 1-45 Hz, units of 100 µV.
SIGNAL_PREPROCESSING = PreprocessConfig(signal_rate=100.0, signal_band=(1.0, 45.0))
BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 14.0), (14.0, 31.0), (31.0, 45.0))  # Riemannian model


@dataclass(frozen=True)
class Settings:
    """Budget of one benchmark run."""

    finetune_folds: int
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    tuh_epochs: int
    low_label_rotations: int
    missing_seeds: int


def settings(quick: bool, seed: int) -> Settings:
    """``quick``: fine-tuning on 2 folds for a few epochs (CI, the demo); else the full budget.

    The scikit-learn methods (classical baselines and probes) run on every fold in both.
    """
    if quick:
        return Settings(
            finetune_folds=2,
            pretrain=replace(
                PRETRAIN,
                epochs=3,
                dim=16,
                depth=2,
                decoder_depth=2,
                heads=4,
                seed=seed,
                snapshot_every_n_epochs=3,
            ),
            finetune=replace(FINETUNE, epochs=3, patience=3, dim=16, depth=2, heads=4, seed=seed),
            tuh_epochs=1,
            low_label_rotations=1,
            missing_seeds=1,
        )
    return Settings(
        finetune_folds=12,
        pretrain=replace(
            PRETRAIN,
            epochs=40,
            dim=32,
            depth=4,
            decoder_depth=4,
            heads=4,
            seed=seed,
            snapshot_every_n_epochs=10,
        ),
        finetune=replace(FINETUNE, epochs=15, patience=5, dim=32, depth=4, heads=4, seed=seed),
        tuh_epochs=10,
        low_label_rotations=4,
        missing_seeds=2,
    )


def run_transfer_benchmark(
    data: str | Path,
    out: str | Path,
    quick: bool = False,
    seed: int = 0,
    checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark; write ``out/results.json``, ``out/results.md`` and ``out/plots``.

    Parameters
    ----------
    data : str | path-like
        A folder laid out like ``../shared/eeg`` (eegmat/, eegmmidb/, muse_n170/).
    out : str | path-like
        Output folder (reruns reuse its corpus and pretraining).
    quick : bool
        The reduced budget (same code path).
    seed : int
        Seed of every random choice.
    checkpoint : str | path-like | None
        The released TUH encoder (default: ``data/../checkpoints/tuh_pretrained_encoder_base.pt``;
        when it does not exist the ``mmm_tuh`` method is skipped).

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    started = time.perf_counter()
    data, out = Path(data), check_output_folder(Path(out))
    checkpoint = Path(checkpoint or data.parent / "checkpoints" / "tuh_pretrained_encoder_base.pt")
    if not checkpoint.is_file():
        logger.warning("No TUH checkpoint at %s: the mmm_tuh method is skipped.", checkpoint)
    budget = settings(quick, seed)
    corpus, subjects = benchmark_corpus(data, out)
    downstream = f"subject in [{', '.join(subjects)}]"
    pool = f"subject not in [{', '.join(subjects)}]"

    pool_config = replace(budget.pretrain, select=pool)
    if not (out / "pretrain" / "encoder" / "config.json").is_file():
        pretrain(out / "corpus", out / "pretrain", pool_config)
    elif yaml.safe_load((out / "pretrain" / "config.yaml").read_text()) != asdict(pool_config):
        raise UserInputError(
            f"{out / 'pretrain'} was pretrained with other settings; choose a new out.",
            parameter="out",
        )
    pretraining = training_summary(out / "pretrain")
    pool_rows = select_windows(corpus.index, pool)

    rows, targets, names, folds = downstream_task(corpus, subjects, seed)
    within = make_folds(corpus.index, rows, "within-subject")
    low_label = low_label_folds(corpus, rows, subjects, budget.low_label_rotations)
    protocols = {"loso": folds, "low_label": low_label, "within_subject": within}
    inits = {
        "mmm_scratch": (replace(budget.finetune, init="scratch"), budget.finetune.epochs),
        "mmm_pool": (replace(budget.finetune, init=str(out / "pretrain")), budget.finetune.epochs),
    }
    if checkpoint.is_file():
        tuh = replace(TUH, init=str(checkpoint), patience=budget.finetune.patience, seed=seed)
        inits["mmm_tuh"] = (tuh, budget.tuh_epochs)
    subsets = channel_subsets(corpus, rows, budget.missing_seeds, seed)
    context = (corpus, rows, targets, seed)

    de = DEFeatures(corpus, rows)
    methods: dict[str, Any] = {
        "de_logreg": {
            **probe_protocols(de.matrix(), protocols, context),
            "missing_channels": de_missing_channels(de, folds, context, subsets),
        },
        "riemann": {
            **probe_protocols(riemann_features(corpus, rows), protocols, context),
            "missing_channels": None,
        },
    }
    tuned = folds[: budget.finetune_folds]
    for name, (config, epochs) in inits.items():
        config = replace(config, epochs=epochs, select=downstream)
        runs = out / "runs" / name
        full = [train_fold(corpus, f, targets, names, config, runs / "finetune") for f in tuned]
        few = [train_fold(corpus, f, targets, names, config, runs / "low_label") for f in low_label]
        models = [
            MMMClassifier.from_pretrained(runs / "finetune" / "folds" / f.name / "model")
            for f in tuned
        ]
        with noise_seed(seed):  # the scratch encoder's random weights
            encoder = load_encoder(config.init, corpus.topology, **config.architecture)
        # One scope for the noise that fills absent nodes (under that policy): the probe's
        # windows, then the fewer-channel evaluation, drawn in that order.
        with noise_seed(config.seed):
            tokens = frozen_tokens(encoder, corpus, rows, config)
            missing = missing_channels_mmm(
                corpus, models, tuned, targets, subsets, config.normalize
            )
        probes = probe_protocols(tokens, protocols, context)
        methods[name] = {
            "balanced_accuracy": per_subject_summary(full),
            "linear_probe": probes["balanced_accuracy"],
            "low_label": per_subject_summary(few),
            "low_label_probe": probes["low_label"],
            "within_subject": probes["within_subject"],
            "missing_channels": missing,
        }
    result = {
        "protocol": {
            "pool": pool,
            "pool_windows": len(pool_rows),
            "downstream_subjects": subjects,
            "test_subjects": subjects,
            "finetune_test_subjects": subjects[: budget.finetune_folds],
            "labels": names,
            "quick": quick,
            "seed": seed,
            "normalize": NORMALIZE,
            "validation": "fine-tuning: 2 subjects from the training side per fold (epoch "
            "selection); logistic regression: C by grouped inner cross-validation on the "
            "training subjects; low-label: 3 train, 1 validation; within-subject: first 70 % "
            "of each recording trains, last 20 % tests",
            "pretrain": {k: v for k, v in vars(pool_config).items() if v is not None},
            "finetune": {k: v for k, v in vars(budget.finetune).items() if v is not None},
            "tuh_finetune": {k: v for k, v in vars(TUH).items() if v is not None}
            | {"epochs": budget.tuh_epochs},
            "channel_subsets": {k: [list(s) for s in v] for k, v in subsets.items()},
            "imputation": "DE + logistic regression: missing features = 0 after per-subject "
            "standardisation (the subject's mean); MMM: absent nodes excluded (TUH: noise)",
        },
        "methods": methods,
        "pretraining": {
            "windows": len(pool_rows),
            "hours": round(len(pool_rows) * corpus.config.window / 3600, 3),
            "epochs": pool_config.epochs,
            "final_loss": pretraining["final_train_loss"],
            "heldout_loss": pretraining["best_val_loss"],
            "heldout_baseline": pretraining["val_baseline"],
            "probe_by_epoch": pretraining_curve(out / "pretrain", corpus, rows, folds, context),
        },
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    write_json(out / "results.json", result)
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(results_markdown(result))
    transfer_plots(out, result)
    return result


def benchmark_corpus(
    data: Path, out: Path, config: PreprocessConfig | None = None
) -> tuple[Corpus, list[str]]:
    """The corpus of ``data`` in ``out/corpus`` (built once, reused) and its downstream subjects
    (``config``: the preprocessing, default :class:`PreprocessConfig`)."""
    sources, skipped = discover_sources([data], events="T0,T1,T2")
    build_corpus(sources, out / "corpus", config=config, skipped=skipped)
    corpus = Corpus(out / "corpus")
    subjects = [s for s in DOWNSTREAM if s in set(corpus.index["subject"].astype(str))]
    if len(subjects) < 4:
        raise UserInputError(f"{data}: the downstream eegmat subjects 24-35 are missing.")
    return corpus, subjects


def downstream_task(corpus: Corpus, subjects: list[str], seed: int):
    """Labelled downstream windows, their targets and label names, and the LOSO folds."""
    rows = select_windows(corpus.index, f"subject in [{', '.join(subjects)}]")
    rows = rows[corpus.index["label"].notna().to_numpy()[rows]]
    targets, names = label_targets(corpus.index, rows)
    return rows, targets, names, make_folds(corpus.index, rows, "loso", subjects, seed=seed)


class DEFeatures:
    """DE of the downstream windows on their present nodes, standardised per subject and node."""

    def __init__(self, corpus: Corpus, rows: np.ndarray) -> None:
        x, present = corpus.read(rows, NORMALIZE)  # type: ignore[arg-type]
        self.nodes = np.flatnonzero(present[0])
        self.x = x[:, self.nodes]  # (windows, present nodes, bands)

    def matrix(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Flattened features; nodes outside ``keep`` (bool over present nodes) set to 0."""
        x = self.x if keep is None else np.where(keep[None, :, None], self.x, 0.0)
        return x.reshape(len(x), -1)


def riemann_features(
    corpus: Corpus, rows: np.ndarray, per_subject: bool = True, keep: np.ndarray | None = None
) -> np.ndarray:
    """Filter-bank tangent-space vectors of the windows ``rows`` (read from the source files).

    The channels are those the corpus mapped onto the topology, in node order; covariances are
    re-centred per subject (``per_subject=False``: once over all the windows, for tasks where a
    subject's own mean would remove the label). ``keep``: the nodes read (bool over the
    topology; None: every mapped one).
    """
    covariances = source_windows(
        corpus, rows, lambda *window: band_covariances(*window, BANDS), keep
    )
    subjects = corpus.index["subject"].astype(str).to_numpy()[rows]
    return recentred_tangent_space(covariances, subjects if per_subject else np.zeros(len(rows)))


def source_windows(
    corpus: Corpus, rows: np.ndarray, compute, keep: np.ndarray | None = None
) -> np.ndarray:
    """``compute(data, sfreq, starts, n_samples)`` over each source recording of the windows
    ``rows`` (its mapped channels, in node order; only nodes in ``keep`` when given), stacked in
    ``rows``' order."""
    index, recordings = corpus.index, corpus.recordings
    paths = dict(zip(recordings["recording"], recordings["path"], strict=True))
    out = np.empty(len(rows), dtype=object)
    position = {r: i for i, r in enumerate(rows)}
    for name, part in index.iloc[rows].groupby("recording", sort=False):
        recording = read_recording(paths[name])
        mapping = corpus.topology.map_channels(recording.ch_names)
        channels = mapping.source[mapping.present if keep is None else mapping.present & keep]
        sfreq = recording.sfreq
        n_samples = round(corpus.config.window * sfreq)
        starts = np.round(part["start_s"].to_numpy() * sfreq).astype(int)
        values = compute(recording.data[channels], sfreq, starts, n_samples)
        for row, value in zip(part.index, values, strict=True):
            out[position[row]] = value
    return np.stack(list(out))


@torch.no_grad()
def frozen_tokens(
    encoder: MMMEncoder, corpus: Corpus, rows: np.ndarray, config: FinetuneConfig
) -> np.ndarray:
    """The frozen encoder's region and class tokens of ``rows``, flattened (the probe's input).

    The noise that fills absent nodes (under that policy) comes from torch's generator: call it
    inside :func:`~mmm_eeg.model.noise_seed` for reproducible tokens.
    """
    encoder.eval()
    out = []
    for start in range(0, len(rows), 512):
        x, present = corpus.read(rows[start : start + 512], config.normalize, encoder.tokens)  # type: ignore[arg-type]
        tokens = encoder.unified(torch.from_numpy(x), torch.from_numpy(present))
        out.append(tokens.reshape(len(tokens), -1).numpy())
    return np.concatenate(out)


def probe_protocols(
    features: np.ndarray, protocols: dict[str, list[Fold]], context, balanced: bool = False
) -> dict:
    """Logistic regression on ``features`` (aligned with ``rows``) under every protocol
    (``balanced``: classes weighted by inverse frequency, see
    :func:`~mmm_eeg.baselines.logistic_search`)."""
    corpus, rows, targets, seed = context
    position = {r: i for i, r in enumerate(rows)}
    subject_of = corpus.index["subject"].astype(str).to_numpy()
    starts = corpus.index["start_s"].to_numpy()
    recording_of = corpus.index["recording"].to_numpy()
    out = {}
    for key, folds in protocols.items():
        scores: dict[str, float] = {}
        for fold in folds:
            train = np.concatenate([fold.train, fold.val])
            if key == "within_subject":  # one subject: inner folds are blocks in time
                groups = _time_blocks(train, recording_of, starts, 4)
            else:
                groups = subject_of[train]
            model = logistic_probe(
                features[[position[r] for r in train]], targets[train], groups, seed, balanced
            )
            pred = model.predict(features[[position[r] for r in fold.test]])
            scores.update(
                per_subject_balanced_accuracy(targets[fold.test], pred, subject_of[fold.test])
            )
        out["balanced_accuracy" if key == "loso" else key] = summarize_subjects(scores)
    return out


def _time_blocks(rows: np.ndarray, recording_of, starts, k: int) -> np.ndarray:
    """Block index (0..k-1) in time of each window within its recording."""
    blocks = np.zeros(len(rows), dtype=int)
    for rec in np.unique(recording_of[rows]):
        mine = np.flatnonzero(recording_of[rows] == rec)
        order = mine[np.argsort(starts[rows[mine]], kind="stable")]
        blocks[order] = np.arange(len(order)) * k // len(order)
    return blocks


def pretraining_curve(run: Path, corpus, rows, folds, context) -> dict[str, float]:
    """LOSO probe accuracy of the pool encoder's snapshots (epoch -> mean over subjects).

    Epoch 0 is an untrained encoder of the same size (the same seed as pretraining's start).
    """
    final = MMMEncoder.from_pretrained(run / "encoder")
    with noise_seed(context[3]):
        encoders = {"0": MMMEncoder(corpus.topology, final.dim, final.depth, final.heads)}
    for path in sorted((run / "snapshots").glob("epoch-*")):
        encoders[str(int(path.name.split("-")[1]))] = MMMEncoder.from_pretrained(path)
    config = replace(FINETUNE, seed=context[3])
    curve = {}
    for epoch, encoder in encoders.items():
        with noise_seed(config.seed):
            tokens = frozen_tokens(encoder, corpus, rows, config)
        summary = probe_protocols(tokens, {"loso": folds}, context)
        curve[epoch] = summary["balanced_accuracy"]["mean"]
    return curve


def low_label_folds(
    corpus: Corpus, rows: np.ndarray, subjects: list[str], rotations: int
) -> list[Fold]:
    """Fold r trains on subjects 3r..3r+2 (mod n), validates on 3r+3, tests on the others."""
    subject_of = corpus.index["subject"].astype(str).to_numpy()
    folds = []
    for r in range(rotations):
        train = [subjects[(3 * r + j) % len(subjects)] for j in range(3)]
        val = [subjects[(3 * r + 3) % len(subjects)]]
        test = [s for s in subjects if s not in train + val]
        pick = {
            k: rows[np.isin(subject_of[rows], v)]
            for k, v in (("train", train), ("val", val), ("test", test))
        }
        folds.append(
            Fold(
                f"low-label-{r}",
                pick["train"],
                pick["val"],
                pick["test"],
                {"train_subjects": train, "val_subjects": val, "test_subjects": test},
            )
        )
    return folds
