"""Your data, your verdict: MMM against the classical decoders on any labelled corpus.

:func:`run_compare` reads one corpus (built from files, a manifest, BIDS or arrays), scores every
applicable method on the same labelled windows under a subject-wise protocol, pairs each MMM
variant with the strongest classical method over subjects, and says which to use:

- classical: DE + logistic regression; Riemannian filter-bank tangent space (pyriemann; read from
  the source files, so only for corpora built from files with one montage); for event-locked
  corpora (``preprocess --epochs-from``) also pyriemann's ERP pipeline, xDAWN covariances +
  tangent space, fitted on each training fold (1-20 Hz epochs from the source files); for trial
  paradigms (recordings that alternate classes, as motor imagery does, or event-locked windows)
  of at least 8 channels, CSP + LDA (MNE's ``CSP``, 8-30 Hz, fitted on each training fold);
- MMM, each as a linear probe on its frozen region and class tokens: an untrained encoder, the
  released TUH encoder (``mmm_base_tuh``), its completed form (``mmm_base_tuh_completed``, when
  its weights are found) and every pretrained run given;
- MMM fine-tuned (``finetune``: the variants named, or ``"all"``): each variant's weights
  trained with a head on each training fold (the recipe the transfer benchmark trains its own
  models with, fixed a priori, for every row; random weights learn at the head's rate, trained
  ones at a tenth of it), the epoch chosen on the fold's validation windows, the test windows
  scored once;
- ``pretrain_pool``: MMM pretrained first on an unlabelled corpus (the transfer benchmark's
  recipe), then probed (and fine-tuned) like any run given;
- protocol (``auto``): leave one subject out (up to 20 subjects), grouped 5-fold over more
  subjects, and within subject for fewer than 3: contiguous blocks in time of each recording
  (5 folds), no training window within ``gap_s`` seconds of a test window (a trial's other
  windows, overlapping windows; the gap is counted in windows from the closest spacing of
  consecutive windows, so it is at least ``gap_s``). Within subject, the paired statistics
  run over the (subject, fold) units instead of subjects: with one subject and 5 folds the smallest
  two-sided Wilcoxon p is 0.0625, so such a verdict can never read "beyond the noise".
  ``holdout``: the named test subjects, every other subject trains;
- seeds (``seeds``): stochastic methods (the untrained encoder's weights, fine-tuning) run once
  per seed; a unit's score is the mean over seeds, and the spread of the seeds' means is kept;
- few-label curves (``curve``): every method but the fine-tuned ones scored again with each
  training fold cut to 2, 4, 8, 16 training subjects (``"subjects"``) or 5, 10, 20, 40, 80
  labelled windows per class and training subject (``"epochs"``), the same test windows.

Standardisation: per subject, per node and band (the transfer benchmark's), unless every subject
carries one label (a trait task): standardising each subject by its own statistics would remove
what separates them, so then MMM's input is standardised with statistics fitted on each fold's
training windows, the DE baseline reads raw DE (its scaler is fitted on the training fold), the
Riemannian model re-centres once over all windows, and the probes weight classes by inverse
frequency (leaving one subject out unbalances the training classes against the held-out one).

Each method's scores are written as it finishes (``OUT/methods/NAME.json``); a rerun reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from mmm_eeg.atomic import atomic_path, check_output_folder, write_json
from mmm_eeg.baselines import band_passed_windows, csp_lda, xdawn_tangent_space
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.labels import label_targets
from mmm_eeg.errors import UserInputError
from mmm_eeg.experiments.transfer import (
    FINETUNE,
    probe_protocols,
    riemann_features,
    source_windows,
)
from mmm_eeg.experiments.transfer_report import paired_difference
from mmm_eeg.inference import run_windows
from mmm_eeg.model import MMMClassifier, MMMEncoder, list_models, model_card, noise_seed
from mmm_eeg.model.loading import resolve_model
from mmm_eeg.normalization import Normalizer
from mmm_eeg.spec import token_input
from mmm_eeg.train.finetune import input_normalization, train_fold
from mmm_eeg.train.finetune import predict as predict_probabilities
from mmm_eeg.train.metrics import per_subject_balanced_accuracy
from mmm_eeg.train.protocols import Fold, make_folds
from mmm_eeg.train.selection import select_windows
from mmm_eeg.validation import check_option, check_range
from mmm_eeg.viz import pyplot, save_figure

logger = logging.getLogger(__name__)

CLASSICAL = ("de_logreg", "riemann", "xdawn", "csp_lda")
#: The ERP pipeline's pass band (Hz): evoked potentials live below 20 Hz.
ERP_BAND = (1.0, 20.0)
#: CSP's pass band (Hz): the mu and beta rhythms motor imagery modulates.
MOTOR_BAND = (8.0, 30.0)
#: Fewest channels for CSP's spatial filters to mean something.
CSP_MIN_CHANNELS = 8
PROTOCOLS = ("auto", "loso", "subject-kfold", "within-subject", "holdout")
#: Few-label curves: training subjects per fold, or labelled windows per class and subject.
CURVE_POINTS = {"subjects": (2, 4, 8, 16), "epochs": (5, 10, 20, 40, 80)}
#: Epochs of the fine-tuned rows (the transfer benchmark's full budget).
FINETUNE_EPOCHS = 15
#: Folds (blocks in time of each recording) of the within-subject protocol.
WITHIN_FOLDS = 5
#: Per subject, per node and band: the transfer benchmark's standardisation.
SUBJECT_NORMALIZE = "subject-node"
LOSO_MAX_SUBJECTS = 20
#: The released encoder and its completed form, probed when their weights are found.
REGISTERED = ("mmm_base_tuh", "mmm_base_tuh_completed")
#: Suffix of a fine-tuned MMM row.
FINETUNED = "_finetuned"
#: ``metadata["weights"]`` of a saved encoder whose weights are random (an untrained twin).
RANDOM_WEIGHTS = "random"


def run_compare(
    corpus_path: str | Path,
    out: str | Path,
    pretrained: Sequence[str | Path] = (),
    select: str | None = None,
    quick: bool = False,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    protocol: str = "auto",
    gap_s: float = 4.0,
    finetune: Sequence[str] = (),
    finetune_epochs: int = FINETUNE_EPOCHS,
    seeds: int = 1,
    test_subjects: Sequence[str] | None = None,
    curve: str | None = None,
    pretrain_pool: str | Path | None = None,
    channels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score every applicable method on a corpus's labels and give the verdict.

    Parameters
    ----------
    corpus_path : str | path-like
        A corpus from ``mmm-eeg preprocess`` (or ``build_corpus_from_recordings``) with labels.
    out : str | path-like
        Output folder: ``results.json``, ``report.md``, ``paired.png``, ``methods/``.
    pretrained : sequence of str | path-like
        Pretraining runs (or any model :func:`~mmm_eeg.model.loading.resolve_model` reads) to
        probe beside the untrained and released encoders.
    select : str | None
        Which windows take part (``--select`` syntax); None: every labelled window.
    quick : bool
        At most 6 subjects and no Riemannian model (CI; the same code path otherwise).
    seed : int
        Seed of the folds, the probes and the untrained encoder (the first seed).
    checkpoint_dir : str | path-like | None
        Where to look first for registered weights.
    protocol : {"auto", "loso", "subject-kfold", "within-subject", "holdout"}
        How windows are split; ``auto``: see the module docstring.
    gap_s : float
        Within subject: seconds between any training window and a test window.
    finetune : sequence of str
        MMM variants to fine-tune too (``mmm_untrained``, ``mmm_base_tuh``, a pretrained run's
        row name), or ``["all"]``; each adds a row ``NAME_finetuned``.
    finetune_epochs : int
        Epochs of each fine-tuning (early stopping after 5 without a better validation score).
    seeds : int
        Runs of each stochastic method (seeds ``seed``, ``seed + 1``, ...).
    test_subjects : sequence of str | None
        The test subjects of the ``holdout`` protocol.
    curve : {"subjects", "epochs"} | None
        A few-label curve: fewer training subjects, or fewer labelled windows per subject.
    pretrain_pool : str | path-like | None
        An unlabelled corpus to pretrain MMM on first (row ``mmm_pretrain_pool``).
    channels : sequence of str | None
        Only these electrodes (topology node names), for every method: what a smaller cap
        would give. None: every electrode of the windows.

    Returns
    -------
    dict
        The content of ``results.json``: ``task``, ``methods.NAME.balanced_accuracy.{mean, std,
        per_subject}`` (within subject, ``per_subject`` holds one score per subject and fold;
        with seeds, also ``per_seed``), ``skipped``, ``paired``, ``verdict``; with a curve,
        ``methods.NAME.curve``.
    """
    check_option("protocol", protocol, PROTOCOLS)
    check_range("gap_s", gap_s, low=0)
    check_range("seeds", seeds, low=1)
    check_range("finetune_epochs", finetune_epochs, low=1)
    if curve is not None:
        check_option("curve", curve, tuple(CURVE_POINTS))
    if channels is not None and finetune:
        raise UserInputError(
            "Fine-tuned rows read every electrode of the corpus; to fine-tune on fewer, "
            "preprocess a corpus of those channels (or drop --channels).",
            parameter="channels",
        )
    if (protocol == "holdout") != bool(test_subjects):
        raise UserInputError(
            "The holdout protocol takes its test subjects, and only it does: give both "
            "--protocol holdout and --test-subject S (repeatable).",
            parameter="test_subjects",
        )
    started = time.perf_counter()
    out = check_output_folder(Path(out))
    corpus = Corpus(corpus_path)
    # Everything a user can get wrong is checked before anything long runs.
    task = _task(corpus, select, quick, seed, protocol, gap_s, test_subjects)
    keep = None if channels is None else _kept_nodes(corpus, task["rows"], channels)
    if keep is not None:
        task["channels"] = list(channels)
    rows, targets = task.pop("rows"), task.pop("targets")
    folds: list[Fold] = task.pop("folds")
    if curve == "subjects" and task["unit"] == "fold":
        raise UserInputError(
            "A curve over training subjects needs a subject-wise protocol; within subject, "
            "use --curve epochs.",
            parameter="curve",
        )
    curve_folds = (
        {}
        if curve is None
        else few_label_folds(corpus.index, folds, targets, curve, seed, task["trait"])
    )
    pretrained = list(pretrained)
    runs = [_resolve_run(source, corpus, checkpoint_dir) for source in pretrained]
    pool_run = None
    if pretrain_pool is not None:
        pool_run = _check_pool(pretrain_pool, corpus, out, quick, seed)
    tuned = _finetuned_names(finetune, [*pretrained, *([pool_run] if pool_run else [])])
    if tuned:
        _check_classes_to_tune(folds, targets, task["labels"])
    if pool_run is not None:
        pretrained.append(pretrain_on_pool(pretrain_pool, out, quick, seed))
        runs.append(_resolve_run(pool_run, corpus, checkpoint_dir))
    runs = [(name, *run) for name, run in zip(_run_names(pretrained), runs, strict=True)]
    context = (corpus, rows, targets, seed)
    methods: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    fingerprint = task_fingerprint(corpus, folds, targets, task["labels"], seed, quick)
    if keep is not None:
        fingerprint["channels"] = task["channels"]
    settings = {"out": out, "epochs": finetune_epochs, "tuned": tuned, "keep": keep}
    for name, make, stochastic, recipe in _methods(corpus, rows, targets, task, runs, quick,
                                                   checkpoint_dir, skipped, settings):  # fmt: skip
        tuning = name.endswith(FINETUNED)
        mine = {**fingerprint, **recipe}
        if stochastic and seeds > 1:
            mine["seeds"] = seeds
        if curve is not None and not tuning:
            mine["curve"] = curve
        saved = out / "methods" / f"{name}.json"
        if saved.is_file():
            previous = json.loads(saved.read_text())
            if previous.get("fingerprint") == mine:
                methods[name] = previous
                logger.info("%s: reused from %s", name, saved)
                continue
        logger.info("%s: scoring", name)
        made = [make(seed + i) for i in range(seeds if stochastic else 1)]
        scores = seed_mean([_score(method, folds, context, task) for method in made])
        methods[name] = {"balanced_accuracy": scores, "fingerprint": mine}
        if curve is not None and not tuning:
            methods[name]["curve"] = {
                str(n): _score(made[0], point, context, task) for n, point in curve_folds.items()
            }
        write_json(saved, methods[name])
    if curve is not None:
        task["curve"] = {"kind": curve, "points": [int(n) for n in curve_folds]}
    result = {
        "task": task,
        "methods": methods,
        "skipped": skipped,
        **verdict(methods, task["unit"]),
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    write_json(out / "results.json", result)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report_markdown(result))
    paired_plot(out / "paired.png", result)
    if curve_folds:
        curve_plot(out / "curve.png", result)
    return result


def _check_pool(pool: str | Path, corpus: Corpus, out: Path, quick: bool, seed: int) -> Path:
    """Where ``--pretrain-pool`` pretrains (``out/pretrain_pool``), once the pool is checked: an
    mmm-eeg corpus of the same topology and features as the corpus compared, and not a run of
    another pool or recipe already in ``out``."""
    from mmm_eeg.experiments.transfer import settings

    source = Corpus(pool)
    if source.topology != corpus.topology:
        raise UserInputError(
            f"{pool}: its topology {source.topology.name!r} is not the corpus's "
            f"{corpus.topology.name!r}; preprocess both onto one topology.",
            parameter="pretrain_pool",
        )
    source.feature_spec().check_features(corpus.feature_spec(), f"the corpus {corpus.path}")
    run = out / "pretrain_pool"
    origin = {"pool": str(source.path), "config": asdict(settings(quick, seed).pretrain)}
    if (run / "pool.json").is_file() and json.loads((run / "pool.json").read_text()) != origin:
        raise UserInputError(
            f"{run} was pretrained on another pool or recipe; choose a new --out.",
            parameter="pretrain_pool",
        )
    return run


def pretrain_on_pool(pool: str | Path, out: Path, quick: bool, seed: int) -> Path:
    """MMM pretrained on an unlabelled corpus with the transfer benchmark's recipe (its reduced
    form under ``quick``) in ``out/pretrain_pool``; a finished run is reused, an interrupted one
    resumed (check the pool first: :func:`_check_pool`)."""
    from mmm_eeg.experiments.transfer import settings
    from mmm_eeg.train.pretrain import pretrain

    config = settings(quick, seed).pretrain
    run = out / "pretrain_pool"
    write_json(run / "pool.json", {"pool": str(Corpus(pool).path), "config": asdict(config)})
    if not (run / "encoder" / "config.json").is_file():
        resume = (run / "checkpoints" / "last.ckpt").is_file()
        pretrain(pool, run, config, resume=resume)
    return run


def _finetuned_names(finetune: Sequence[str], pretrained: Sequence[str | Path]) -> set[str]:
    """The MMM rows to fine-tune, checked before anything runs."""
    known = ["mmm_untrained", *REGISTERED, *_run_names(pretrained)]
    if list(finetune) == ["all"]:
        return set(known)
    unknown = sorted(set(finetune) - set(known))
    if unknown:
        raise UserInputError(
            f"Cannot fine-tune {', '.join(unknown)}: the MMM rows here are "
            f"{', '.join(known)} (or give 'all').",
            parameter="finetune",
        )
    return set(finetune)


def seed_mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores of one method over seeds: each unit's mean over the seeds, and each seed's mean."""
    if len(runs) == 1:
        return runs[0]
    per = {u: float(np.mean([r["per_subject"][u] for r in runs])) for u in runs[0]["per_subject"]}
    values, means = np.array(list(per.values())), [r["mean"] for r in runs]
    return {"mean": float(values.mean()), "std": float(values.std()), "per_subject": per,
            "per_seed": means, "seed_std": float(np.std(means))}  # fmt: skip


def few_label_folds(
    index, folds: list[Fold], targets: np.ndarray, curve: str, seed: int, trait: bool = False
) -> dict[int, list[Fold]]:
    """Each point of a few-label curve: the folds with their training side (training and
    validation windows) cut to ``n`` random training subjects, or to ``n`` random windows per
    class and training subject; the test windows unchanged.

    A point is left out when, in some fold, it would keep the whole training side (it is the
    full result) or, for a trait task (one label per subject), fewer than 2 subjects per class
    (the probe's inner cross-validation would train on one class): there ``n`` subjects are
    ``n / classes`` of each class (a point ``n`` that classes do not divide is left out).
    """
    subject_of = index["subject"].astype(str).to_numpy()
    points: dict[int, list[Fold]] = {}
    for n in CURVE_POINTS[curve]:
        cut = []
        for j, fold in enumerate(folds):
            side = np.concatenate([fold.train, fold.val])
            rng = np.random.default_rng([seed, n, j])
            if curve == "subjects":
                pools = _subjects_by_class(subject_of[side], targets[side], trait)
                each = n // len(pools)
                if (
                    each < (2 if trait else 1)
                    or n % len(pools)
                    or any(each > len(p) for p in pools)
                    or sum(map(len, pools)) <= n
                ):
                    break
                chosen = [s for pool in pools for s in rng.choice(pool, each, replace=False)]
                keep = np.isin(subject_of[side], chosen)
            else:
                pairs = sorted({(subject_of[r], int(targets[r])) for r in side})
                groups = [np.flatnonzero((subject_of[side] == s) & (targets[side] == c))
                          for s, c in pairs]  # fmt: skip
                if all(len(g) <= n for g in groups):
                    break
                keep = np.zeros(len(side), dtype=bool)
                for g in groups:
                    keep[rng.permutation(g)[:n]] = True
            train = np.sort(side[keep])
            cut.append(Fold(f"{fold.name} {curve}-{n}", train, train[:0], fold.test))
        else:
            points[n] = cut
    return points


def _subjects_by_class(subjects: np.ndarray, labels: np.ndarray, trait: bool) -> list[list[str]]:
    """The training subjects to draw from: per class for a trait task, else all in one pool."""
    if not trait:
        return [sorted(set(subjects))]
    return [sorted(set(subjects[labels == c])) for c in np.unique(labels)]


def _task(
    corpus: Corpus,
    select: str | None,
    quick: bool,
    seed: int,
    protocol: str,
    gap_s: float,
    test_subjects: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The labelled windows, their targets, the folds, and what kind of task it is."""
    rows = select_windows(corpus.index, select)
    rows = rows[corpus.index["label"].notna().to_numpy()[rows]]
    if len(rows) == 0:
        raise UserInputError(
            f"{corpus.path}: no labelled window{'' if select is None else f' in {select!r}'}; "
            "preprocess with labels (--events, a manifest's label column, BIDS events)."
        )
    index = corpus.index
    subject_of = index["subject"].astype(str).to_numpy()
    subjects = sorted(set(subject_of[rows]))
    if quick and len(subjects) > 6:
        subjects = subjects[:6]
        rows = rows[np.isin(subject_of[rows], subjects)]
    targets, names = label_targets(index, rows)
    labels_per_subject = {s: len(set(targets[rows[subject_of[rows] == s]])) for s in subjects}
    trait = all(n == 1 for n in labels_per_subject.values())
    if protocol == "auto":
        protocol = (
            "within-subject" if len(subjects) < 3
            else "loso" if len(subjects) <= LOSO_MAX_SUBJECTS else "subject-kfold"
        )  # fmt: skip
    extra: dict[str, Any] = {}
    if protocol == "within-subject":
        if trait:
            raise UserInputError(
                f"{corpus.path}: every subject has one label, so no subject can be scored on "
                "its own data; use a subject-wise protocol (loso, subject-kfold)."
            )
        gap = _gap_windows(index, rows, gap_s)
        try:
            folds = make_folds(index, rows, "time-blocked", k=WITHIN_FOLDS, gap=gap, labels=targets)
        except UserInputError as err:
            raise UserInputError(
                f"{err} (within subject, benchmark compare cuts each recording into "
                f"{WITHIN_FOLDS} blocks with a gap of {gap_s:g} s = {gap} windows: lower "
                "--gap-s, or use a subject-wise --protocol)"
            ) from err
        extra = {"gap_s": gap_s, "gap_windows": gap}
    elif len(subjects) < 3:
        raise UserInputError(
            f"{corpus.path}: {len(subjects)} subject(s) with labels; a subject-wise comparison "
            "needs at least 3 (more for a verdict); use --protocol within-subject."
        )
    else:
        tests = {"loso": subjects, "holdout": list(test_subjects or ())}.get(protocol)
        if protocol == "holdout" and len(set(subjects) - set(tests or ())) < 3:
            raise UserInputError(
                f"{corpus.path}: holding out {tests} leaves "
                f"{len(set(subjects) - set(tests or ()))} subject(s) to train on; the holdout "
                "needs at least 3 (2 validate, the rest train): hold out fewer subjects.",
                parameter="test_subjects",
            )
        folds = make_folds(index, rows, protocol, tests, seed=seed)  # type: ignore[arg-type]
        if protocol == "holdout":
            extra = {"test_subjects": sorted(tests or ())}
    return {
        "rows": rows, "targets": targets, "folds": folds,
        "corpus": str(corpus.path), "select": select, "labels": names,
        "subjects": subjects, "windows": len(rows), "protocol": protocol, **extra,
        "unit": "fold" if protocol == "within-subject" else "subject",
        "trait": trait,
        "standardisation": "fitted on each training fold" if trait else SUBJECT_NORMALIZE,
        "quick": quick,
    }  # fmt: skip


def _kept_nodes(corpus: Corpus, rows: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """The topology nodes ``channels`` name (bool over the nodes), checked: every name is a
    node, and every window keeps at least one of them."""
    topology = corpus.topology
    keep = topology.node_mask(channels)
    present = corpus.present[np.sort(rows)]
    empty = int((~(present & keep).any(1)).sum())
    if empty:
        held = sorted(topology.nodes[i] for i in np.flatnonzero(present.any(0)))
        raise UserInputError(
            f"{empty} of the {len(rows)} windows have none of {list(channels)}; their electrodes "
            f"are among {held}.",
            parameter="channels",
        )
    return keep


def _gap_windows(index, rows: np.ndarray, gap_s: float) -> int:
    """Windows left out on each side of a test block so that at least ``gap_s`` seconds
    separate training and test windows: ``gap_s`` over the smallest spacing of consecutive
    windows of a recording (the hop of tiled windows; between events, the closest two)."""
    starts = index["start_s"].to_numpy()[rows]
    recordings = index["recording"].to_numpy()[rows]
    spacing = [np.diff(np.sort(starts[recordings == rec])) for rec in np.unique(recordings)]
    spacing = np.concatenate(spacing) if spacing else np.array([])
    spacing = spacing[spacing > 0]
    return int(np.ceil(gap_s / spacing.min() - 1e-9)) if len(spacing) else 0


def _methods(corpus, rows, targets, task, runs, quick, checkpoint_dir, skipped, settings):
    """``(name, make, stochastic, recipe)`` of every applicable method: ``make(seed)``
    computes its features (only when the method is not reused) as ``features(fold) -> (n_rows,
    d)``, or gives a :class:`Decoder`; ``stochastic`` methods are made once per seed; ``recipe``:
    what else a saved score must have been computed with (the saved weights' digest, a
    fine-tuning's settings)."""
    trait, keep = task["trait"], settings["keep"]
    x_raw, present = corpus.read(rows, "none")  # type: ignore[arg-type]
    if keep is not None:  # the other electrodes are absent for every method
        present &= keep
    nodes = np.flatnonzero(present.any(0))

    def de(_):
        if trait:  # raw DE: the probe's own scaler is fitted on each training fold
            matrix = x_raw[:, nodes].reshape(len(rows), -1)
        else:
            x, _ = corpus.read(rows, SUBJECT_NORMALIZE)  # type: ignore[arg-type]
            matrix = x[:, nodes].reshape(len(rows), -1)
        return lambda fold: matrix

    yield "de_logreg", de, False, {}

    event_locked = corpus.config.epoch_tmin is not None
    reason = _riemann_unavailable(corpus, rows, present)
    if quick:
        reason = "left out of --quick runs (it reads every source file again)"
    if reason:
        skipped["riemann"] = reason
        if event_locked:
            skipped["xdawn"] = reason
    else:
        task["riemann_recentring"] = "over all windows" if trait else "per subject"

        def riemann(_):
            covariances = riemann_features(corpus, rows, per_subject=not trait, keep=keep)
            return lambda fold: covariances

        yield "riemann", riemann, False, {}
        if event_locked:
            yield "xdawn", lambda _: _xdawn(corpus, rows, targets, keep), False, {}
    if not event_locked:
        skipped["xdawn"] = "for event-locked corpora (preprocess --epochs-from) only"
    csp_reason = reason or _csp_unavailable(corpus, rows, targets, nodes, event_locked)
    if csp_reason:
        skipped["csp_lda"] = csp_reason
    else:
        yield "csp_lda", lambda _: _csp_lda(corpus, rows, targets, keep), False, {}

    for name, build, normalize, stochastic, trained, weights in _encoders(
        corpus, runs, checkpoint_dir, skipped
    ):
        identity = {} if weights is None else {"weights": weights}

        def tokens(seed, build=build, normalize=normalize):
            encoder = build(seed)
            if trait:
                signal = corpus.signal_of(rows, encoder.tokens)
                return _fitted_tokens(encoder, x_raw, present, rows, seed, signal)
            x, _ = corpus.read(rows, normalize, encoder.tokens)  # type: ignore[arg-type]
            matrix = _tokens(encoder, x, present, seed)
            return lambda fold: matrix

        yield name, tokens, stochastic, identity
        if name in settings["tuned"]:
            folder = settings["out"] / "runs" / (name + FINETUNED)
            normalize = "fitted" if trait or isinstance(normalize, Normalizer) else normalize
            # Random weights learn at the head's rate (a model trained from scratch); the
            # slower encoder rate is for weights worth keeping.
            scale = FINETUNE.encoder_lr_scale if trained else 1.0
            recipe = {"finetune_epochs": settings["epochs"], "encoder_lr_scale": scale, **identity}

            def tuned(seed, build=build, normalize=normalize, folder=folder, recipe=recipe):
                return _finetuned(corpus, targets, task, build(seed), normalize,
                                  folder / f"seed-{seed}", recipe, seed)  # fmt: skip

            yield name + FINETUNED, tuned, True, recipe


def _encoders(corpus, runs, checkpoint_dir, skipped):
    """``(name, build, normalize, stochastic, trained, weights)`` of the MMM variants:
    ``build(seed)`` gives the encoder (the untrained one's weights are drawn from the seed),
    ``normalize`` its own standardisation (a model that reads other features than the corpus
    holds is refused, naming both); ``stochastic``: the seed draws its weights, or the noise its
    absent nodes are filled with; ``trained``: not random weights; ``weights``: the digest of
    saved weights (None for those the seed draws). ``runs``: the resolved
    ``(name, encoder, normalize, trained)`` of the pretrained sources."""

    def untrained(seed: int) -> MMMEncoder:
        with noise_seed(seed):
            return MMMEncoder(**model_card("mmm_base").encoder)

    yield "mmm_untrained", untrained, SUBJECT_NORMALIZE, True, False, None
    for name in REGISTERED:
        if name not in list_models():
            continue
        try:  # not found, or made for other features than this corpus holds: skipped, why
            resolved = resolve_model(name, checkpoint_dir)
            normalize = input_normalization(resolved.spec, corpus, None)
        except UserInputError as err:
            skipped[name] = str(err)
            continue
        encoder = resolved.encoder
        noisy = encoder.absent == "noise"
        yield name, lambda _, e=encoder: e, normalize, noisy, True, weights_digest(encoder)
    for name, encoder, normalize, trained in runs:
        # absent nodes filled with noise: the score depends on the seed's draw
        noisy = encoder.absent == "noise"
        yield name, lambda _, e=encoder: e, normalize, noisy, trained, weights_digest(encoder)


def _check_classes_to_tune(folds: list[Fold], targets: np.ndarray, labels: list[str]) -> None:
    """Refuse fine-tuning on a fold whose training side lacks a class (a trait task with few
    training subjects, two of which validate): the model would never see that class."""
    for fold in folds:
        seen = {labels[t] for t in np.unique(targets[fold.train]) if t >= 0}
        missing = [name for name in labels if name not in seen]
        if missing:
            raise UserInputError(
                f"Fold {fold.name}: once its validation subjects are set aside, its training "
                f"subjects carry no {missing} window, so fine-tuning would never see that "
                "class. Hold out fewer test subjects, or compare more subjects.",
                parameter="finetune",
            )


def task_fingerprint(
    corpus: Corpus,
    folds: list[Fold],
    targets: np.ndarray,
    labels: list[str],
    seed: int,
    quick: bool,
) -> dict[str, Any]:
    """What a saved score was computed on: a rerun reuses it only for the same windows in the
    same folds (any protocol, test subjects, gap), with the same labels, seed and budget."""
    digest = hashlib.sha256()
    for fold in folds:
        for part in (fold.train, fold.val, fold.test):
            digest.update(np.asarray(part, dtype=np.int64).tobytes() + b"|")
    # a corpus rebuilt in place with other labels is another task
    digest.update(np.asarray(targets, dtype=np.int64).tobytes() + b"|")
    digest.update("\x1f".join(labels).encode())
    return {"corpus": str(corpus.path), "task": digest.hexdigest()[:16], "seed": seed,
            "quick": quick}  # fmt: skip


def weights_digest(encoder: MMMEncoder) -> str:
    """A digest of an encoder's weights: a run retrained in place gets new scores."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _resolve_run(source: str | Path, corpus: Corpus, checkpoint_dir):
    """A ``--pretrained`` source read and checked against the corpus: ``(encoder, normalize,
    trained)``; ``trained`` is False for weights saved with ``metadata={"weights": "random"}``
    (an untrained twin, fine-tuned as a model trained from scratch)."""
    resolved = resolve_model(source, checkpoint_dir)
    if resolved.encoder.topology != corpus.topology:
        raise UserInputError(
            f"{source}: its topology {resolved.encoder.topology.name!r} is not the "
            f"corpus's {corpus.topology.name!r}.",
            parameter="pretrained",
        )
    normalize = input_normalization(resolved.spec, corpus, None)
    folders = [Path(str(source)), Path(str(source)) / "encoder"]
    configs = [f / "config.json" for f in folders if (f / "config.json").is_file()]
    metadata = json.loads(configs[0].read_text()).get("metadata", {}) if configs else {}
    return resolved.encoder, normalize, metadata.get("weights") != RANDOM_WEIGHTS


def _finetuned(corpus, targets, task, encoder, normalize, folder: Path, recipe, seed: int):
    """A :class:`Decoder` that fine-tunes ``encoder`` with a head on each training fold (the
    transfer benchmark's ``FINETUNE``, ``recipe``'s epochs and encoder learning-rate scale; early
    stopping on the fold's validation windows) and predicts the fold's test windows with the
    saved fold model, as a user would."""
    encoder.save_pretrained(folder / "init")  # the probe's weights, the fine-tuning's start
    epochs = recipe["finetune_epochs"]
    config = replace(
        FINETUNE, init=str(folder / "init"), epochs=epochs, patience=min(5, epochs), seed=seed,
        normalize=normalize, absent=encoder.absent, tokens=encoder.tokens,
        class_weights="balanced" if task["trait"] else None,
        encoder_lr_scale=recipe["encoder_lr_scale"],
    )  # fmt: skip

    def predict(fold: Fold) -> np.ndarray:
        # A batch is at most an eighth of the training side (at least 8 windows): a small
        # training side would otherwise take one or two steps an epoch.
        batch = min(config.batch_size, max(8, len(fold.train) // 8))
        train_fold(corpus, fold, targets, task["labels"], replace(config, batch_size=batch), folder)
        classifier = MMMClassifier.from_pretrained(folder / "folds" / fold.name / "model")
        spec = classifier.encoder.feature_spec
        probabilities = predict_probabilities(
            classifier, corpus, fold.test, input_normalization(spec, corpus, None)
        )
        return probabilities.argmax(1)

    return Decoder(predict)


def _run_names(sources: Sequence[str | Path]) -> list[str]:
    """``mmm_<folder>`` per source, with its parent folders added until the names differ."""
    parts = [Path(str(s)).resolve().parts for s in sources]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["mmm_" + "_".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    raise UserInputError("The same --pretrained source is given twice.", parameter="pretrained")


def _tokens(encoder: MMMEncoder, x: np.ndarray, present: np.ndarray, seed: int) -> np.ndarray:
    tokens = run_windows(encoder, x, present, seed=seed)
    return tokens.reshape(len(tokens), -1)


def _fitted_tokens(encoder, x_raw, present, rows, seed, signal):
    """Tokens of windows whose DE is standardised per node and band with one training fold's
    statistics (the signal, for raw tokens, as stored)."""
    position = {r: i for i, r in enumerate(rows)}

    def features(fold: Fold) -> np.ndarray:
        train = [position[r] for r in np.concatenate([fold.train, fold.val])]
        normalizer = Normalizer.fit(x_raw[train], present[train])
        x = token_input(encoder.tokens, normalizer.fit_transform(x_raw, present), signal)
        return _tokens(encoder, x, present, seed)

    return features


def _xdawn(corpus: Corpus, rows: np.ndarray, targets: np.ndarray, keep: np.ndarray | None = None):
    """xDAWN + tangent-space features per fold: the pipeline is fitted on the fold's training
    epochs (xDAWN is supervised), then transforms every epoch."""
    epochs = source_windows(
        corpus, rows, lambda *window: band_passed_windows(*window, ERP_BAND), keep
    )
    position = {r: i for i, r in enumerate(rows)}

    def features(fold: Fold) -> np.ndarray:
        train = np.array([position[r] for r in np.concatenate([fold.train, fold.val])])
        model = xdawn_tangent_space().fit(epochs[train], targets[rows[train]])
        return model.transform(epochs)

    return features


def _csp_lda(
    corpus: Corpus, rows: np.ndarray, targets: np.ndarray, keep: np.ndarray | None = None
) -> Decoder:
    """CSP + LDA on 8-30 Hz windows from the source files, fitted on each training fold."""
    windows = source_windows(
        corpus, rows, lambda *window: band_passed_windows(*window, MOTOR_BAND), keep
    )
    position = {r: i for i, r in enumerate(rows)}

    def predict(fold: Fold) -> np.ndarray:
        train = np.array([position[r] for r in np.concatenate([fold.train, fold.val])])
        model = csp_lda().fit(windows[train], targets[rows[train]])
        return model.predict(windows[[position[r] for r in fold.test]])

    return Decoder(predict)


def _csp_unavailable(corpus, rows, targets, nodes, event_locked: bool) -> str | None:
    """Why CSP + LDA does not apply here (None: it does)."""
    if len(nodes) < CSP_MIN_CHANNELS:
        return f"CSP needs at least {CSP_MIN_CHANNELS} channels; these windows have {len(nodes)}"
    recording_of = corpus.index["recording"].to_numpy()[rows]
    mixed = any(len(set(targets[rows[recording_of == rec]])) > 1 for rec in np.unique(recording_of))
    if not (event_locked or mixed):
        return (
            "for trial paradigms (motor imagery: recordings that alternate classes, or "
            "event-locked windows); here each recording holds one class"
        )
    return None


def _riemann_unavailable(corpus: Corpus, rows: np.ndarray, present: np.ndarray) -> str | None:
    """Why the Riemannian model cannot run here (None: it can)."""
    if len(np.unique(present, axis=0)) > 1:
        return "the windows have different electrodes (covariances need one montage)"
    recordings = corpus.recordings
    mine = recordings[recordings["recording"].isin(set(corpus.index["recording"].iloc[rows]))]
    paths = mine["path"] if "path" in mine else None
    if paths is None or paths.isna().any() or not all(Path(p).is_file() for p in paths):
        return "it reads the source files, which this corpus does not point to (arrays, or moved)"
    return None


@dataclass(frozen=True)
class Decoder:
    """A method with its own classifier: ``predict(fold)`` -> predicted labels of ``fold.test``
    (the other methods give features, which the shared logistic probe reads)."""

    predict: Callable[[Fold], np.ndarray]


def _score(method, folds: list[Fold], context, task: dict[str, Any]) -> dict[str, Any]:
    """Balanced accuracy per subject (within subject: per subject and fold) of a method: a
    :class:`Decoder`, or features read by the logistic probe of :func:`probe_protocols`
    (``balanced`` for trait tasks: classes weighted, as leaving a subject out unbalances
    them; within subject, the probe's inner folds are blocks in time)."""
    corpus, _, targets, _ = context
    subject_of = corpus.index["subject"].astype(str).to_numpy()
    within = task["protocol"] == "within-subject"
    scores: dict[str, float] = {}
    for fold in folds:
        if isinstance(method, Decoder):
            fold_scores = per_subject_balanced_accuracy(
                targets[fold.test], method.predict(fold), subject_of[fold.test]
            )
        else:
            key = "within_subject" if within else "loso"
            result = probe_protocols(method(fold), {key: [fold]}, context, task["trait"])
            fold_scores = result["within_subject" if within else "balanced_accuracy"]["per_subject"]
        if within:
            fold_scores = {f"{s} {fold.name}": v for s, v in fold_scores.items()}
        scores.update(fold_scores)
    values = np.array(list(scores.values()))
    return {"mean": float(values.mean()), "std": float(values.std()), "per_subject": scores}


def verdict(methods: dict[str, Any], unit: str = "subject") -> dict[str, Any]:
    """Each MMM variant paired with the strongest classical method over the scored ``unit``
    (subjects, or within subject their folds); the verdict in one line."""
    classical = [m for m in CLASSICAL if m in methods]
    mmm = [m for m in methods if m not in CLASSICAL]
    if not classical or not mmm:
        return {"paired": {}, "verdict": "nothing to compare"}
    best = max(classical, key=lambda m: methods[m]["balanced_accuracy"]["mean"])
    paired = {}
    for name in mmm:
        a, b = methods[name]["balanced_accuracy"], methods[best]["balanced_accuracy"]
        diff = paired_difference(a, b)
        values = [a["per_subject"][s] - b["per_subject"][s] for s in b["per_subject"]]
        diff["wilcoxon_p"] = float(wilcoxon(values).pvalue) if any(values) else 1.0
        paired[name] = {"against": best, **diff}
    top = max(mmm, key=lambda m: methods[m]["balanced_accuracy"]["mean"])
    d, a, b = paired[top], methods[top]["balanced_accuracy"], methods[best]["balanced_accuracy"]
    if d["wilcoxon_p"] < 0.05 and d["mean"] > 0:
        conclusion = f"{top} helps here: use it"
    elif d["wilcoxon_p"] < 0.05:
        conclusion = f"{best} is better here: use it"
    else:
        conclusion = f"no evidence that MMM helps here: use {best}, the simpler model"
    kind = "" if top.endswith(FINETUNED) else " probe"
    line = (
        f"{top}{kind} {a['mean']:.3f} vs {best} {b['mean']:.3f}: {d['mean']:+.3f} ± "
        f"{d['std']:.3f}, better for {d['better']} of {d['n']} {unit}s, p = "
        f"{d['wilcoxon_p']:.2g}: {conclusion}."
    )
    return {"paired": paired, "strongest_classical": best, "verdict": line}


def probe_verdict(r: dict[str, Any]) -> str:
    """The :func:`verdict` of transfer-benchmark results: each MMM encoder's probe against the
    strongest classical method (the scores compare computes on that corpus, bench/compare.py)."""
    methods = {
        name: {"balanced_accuracy": m.get("linear_probe") or m["balanced_accuracy"]}
        for name, m in r["methods"].items()
    }
    return verdict(methods)["verdict"]


def report_markdown(r: dict[str, Any]) -> str:
    """The methods' table, the paired differences and the verdict."""
    t = r["task"]
    lines = [
        f"Corpus `{t['corpus']}`: {t['windows']} labelled windows of {len(t['subjects'])} "
        f"subjects, labels {', '.join(t['labels'])}; protocol {t['protocol']}"
        + (f" ({WITHIN_FOLDS} blocks in time, gap {t['gap_s']:g} s)" if "gap_s" in t else "")
        + "; "
        f"{'a trait task (one label per subject)' if t['trait'] else 'labels vary within subjects'}"
        f"; standardisation {t['standardisation']}"
        + (f"; only the electrodes {', '.join(t['channels'])}" if "channels" in t else "")
        + ".",
        "",
        f"| method | balanced accuracy (mean ± std over {t.get('unit', 'subject')}s) |",
        "|---|---|",
    ]
    for name, m in r["methods"].items():
        b = m["balanced_accuracy"]
        seeds = (
            f" (seeds: {', '.join(f'{v:.3f}' for v in b['per_seed'])})" if "per_seed" in b else ""
        )
        lines.append(f"| {name} | {b['mean']:.3f} ± {b['std']:.3f}{seeds} |")
    if r["paired"]:
        unit = t.get("unit", "subject")
        lines += ["", f"Paired against {r['strongest_classical']} over {unit}s:", "",
                  f"| method | mean difference ± std | {unit}s better | Wilcoxon p |",
                  "|---|---|---|---|"]  # fmt: skip
        for name, d in r["paired"].items():
            lines.append(
                f"| {name} | {d['mean']:+.3f} ± {d['std']:.3f} | {d['better']}/{d['n']} | "
                f"{d['wilcoxon_p']:.2g} |"
            )
    if "curve" in t:
        lines += ["", *curve_markdown(r)]
    for name, reason in r["skipped"].items():
        lines.append(f"\nSkipped {name}: {reason}")
    lines += ["", f"**Verdict**: {r['verdict']}", ""]
    return "\n".join(lines)


def paired_plot(path: Path, r: dict[str, Any]) -> None:
    """Per-subject differences of each MMM variant against the strongest classical method."""
    if not r["paired"]:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(r["paired"])))
    best = r["strongest_classical"]
    for i, name in enumerate(r["paired"]):
        a = r["methods"][name]["balanced_accuracy"]["per_subject"]
        b = r["methods"][best]["balanced_accuracy"]["per_subject"]
        diff = [a[s] - b[s] for s in b]
        ax.scatter(diff, np.full(len(diff), i), alpha=0.7)
        ax.plot([np.mean(diff)] * 2, [i - 0.3, i + 0.3], color="black")
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(range(len(r["paired"])), list(r["paired"]))
    ax.set_xlabel(f"balanced accuracy minus {best}, per {r['task'].get('unit', 'subject')}")
    save_figure(fig, path)


def curve_markdown(r: dict[str, Any]) -> list[str]:
    """The few-label curve's table: each method's mean balanced accuracy per point."""
    kind, points = r["task"]["curve"]["kind"], r["task"]["curve"]["points"]
    what = "training subjects" if kind == "subjects" else "labelled windows per class and subject"
    if not points:
        return [f"Few-label curve ({what}): no point, every fold's training side is too small "
                "to cut (2 or more subjects per class for a trait task)."]  # fmt: skip
    lines = [f"Few-label curve ({what}; the same test windows; fine-tuned rows are not on it; "
             "all: the full training side, with seeds their mean, the points the first seed):",
             "", f"| method | {' | '.join(str(n) for n in points)} | all |",
             "|---|" + "---|" * (len(points) + 1)]  # fmt: skip
    for name, m in r["methods"].items():
        if "curve" in m:
            cells = [f"{m['curve'][str(n)]['mean']:.3f}" for n in points]
            lines.append(f"| {name} | {' | '.join(cells)} | {m['balanced_accuracy']['mean']:.3f} |")
    return lines


def curve_plot(path: Path, r: dict[str, Any]) -> None:
    """Each method's mean balanced accuracy against the training data it had."""
    kind, points = r["task"]["curve"]["kind"], r["task"]["curve"]["points"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in r["methods"].items():
        if "curve" in m:
            means = [m["curve"][str(n)]["mean"] for n in points]
            ax.plot(range(len(points) + 1), [*means, m["balanced_accuracy"]["mean"]], "o-",
                    label=name)  # fmt: skip
    ax.set_xticks(range(len(points) + 1), [*map(str, points), "all"])
    ax.set_xlabel("training subjects" if kind == "subjects" else "labelled windows per class")
    ax.set_ylabel("balanced accuracy")
    ax.legend(fontsize=7)
    save_figure(fig, path)
