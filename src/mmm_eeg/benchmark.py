"""The cross-montage transfer benchmark (``mmm-eeg benchmark transfer``), all via the public API.

1. One corpus from a folder laid out like ``../shared/eeg``: the pretraining pool is eegmat
   subjects 00-23 (labels unused), eegmmidb and muse_n170; the downstream set is eegmat
   subjects 24-35, rest vs arithmetic.
2. MMM pretrained on the pool (multi-stage masking).
3. Leave-one-subject-out over the downstream subjects (validation subjects from the training
   side), the same folds for every method: DE + logistic regression; MMM from scratch, from the
   pool, from the released TUH checkpoint; each MMM both fine-tuned and as a linear probe.
4. Low-label: trained on 3 subjects (fixed rotation), validated on 1, tested on the rest.
5. Missing electrodes: test recordings reduced to 12, 8, 4 of their 19 channels (random subsets,
   several seeds) and to the 4 nearest a Muse headband, without retraining. DE + logistic
   regression imputes a missing channel's features with 0 after per-subject standardisation,
   i.e. with that subject's mean (mean imputation); MMM excludes absent nodes.

Every method sees per-subject normalised input (see ``PRETRAIN`` / ``FINETUNE`` below).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mmm_eeg.atomic import atomic_path, check_output_folder
from mmm_eeg.build import build_corpus
from mmm_eeg.corpus import Corpus
from mmm_eeg.errors import UserInputError
from mmm_eeg.io.sources import discover_sources
from mmm_eeg.model import MMMClassifier
from mmm_eeg.topology import template_position
from mmm_eeg.train.config import FinetuneConfig, PretrainConfig
from mmm_eeg.train.finetune import label_targets, train_fold
from mmm_eeg.train.pretrain import pretrain, training_summary
from mmm_eeg.train.protocols import Fold, make_folds
from mmm_eeg.train.selection import select_windows

logger = logging.getLogger(__name__)

DOWNSTREAM = [f"eegmat-{i:02d}" for i in range(24, 36)]
METHODS = ("de_logreg", "mmm_scratch", "mmm_pool", "mmm_tuh")
MUSE_SITES = ("TP9", "AF7", "AF8", "TP10")


# Every method reads the same input: per band, normalised over each subject's recordings. Per
# recording would be transductive per condition here (each eegmat recording holds one
# condition): logistic regression on per-recording input reaches 0.92 against 0.70 per subject
# (bench/normalization_control.py). Channel dropout (chosen a priori, not tuned: half of the
# training windows keep between 2 and all of their nodes) teaches the fine-tuned models to
# work with fewer electrodes.
PRETRAIN = PretrainConfig(batch_size=256, lr=1e-3, normalize="subject")
FINETUNE = FinetuneConfig(
    batch_size=128, normalize="subject", channel_dropout=0.5, channel_dropout_min=2
)


@dataclass(frozen=True)
class Settings:
    """Budget of one benchmark run."""

    folds: int
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    tuh_epochs: int
    low_label_rotations: int
    missing_seeds: int


def settings(quick: bool, seed: int) -> Settings:
    """``quick``: 2 folds and a few epochs (CI, the demo); else the full protocol (~30 min)."""
    if quick:
        return Settings(
            folds=2,
            pretrain=replace(
                PRETRAIN, epochs=3, dim=16, depth=2, decoder_depth=2, heads=4, seed=seed
            ),
            finetune=replace(FINETUNE, epochs=3, patience=3, dim=16, depth=2, heads=4, seed=seed),
            tuh_epochs=2,
            low_label_rotations=1,
            missing_seeds=1,
        )
    return Settings(
        folds=12,
        pretrain=replace(PRETRAIN, epochs=30, dim=32, depth=4, decoder_depth=4, heads=4, seed=seed),
        finetune=replace(FINETUNE, epochs=15, patience=5, dim=32, depth=4, heads=4, seed=seed),
        tuh_epochs=8,
        low_label_rotations=4,
        missing_seeds=3,
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
    sources, skipped = discover_sources([data], events="T0,T1,T2")
    build_corpus(sources, out / "corpus", skipped=skipped)
    corpus = Corpus(out / "corpus")
    subjects = [s for s in DOWNSTREAM if s in set(corpus.index["subject"].astype(str))]
    if len(subjects) < 4:
        raise UserInputError(f"{data}: the downstream eegmat subjects 24-35 are missing.")
    downstream = f"subject in [{', '.join(subjects)}]"
    pool = f"subject not in [{', '.join(subjects)}]"

    pool_config = replace(budget.pretrain, select=pool)
    if not (out / "pretrain" / "encoder" / "config.json").is_file():
        pretrain(out / "corpus", out / "pretrain", pool_config)
    elif yaml.safe_load((out / "pretrain" / "config.yaml").read_text()) != asdict(pool_config):
        raise UserInputError(
            f"{out / 'pretrain'} was pretrained with other settings; use a new --out."
        )
    pretraining = training_summary(out / "pretrain")
    pool_rows = select_windows(corpus.index, pool)

    rows = select_windows(corpus.index, downstream)
    rows = rows[corpus.index["label"].notna().to_numpy()[rows]]
    targets, names = label_targets(corpus, rows)
    folds = make_folds(corpus.index, rows, "loso", subjects[: budget.folds], seed=seed)
    low_label = low_label_folds(corpus, rows, subjects, budget.low_label_rotations)
    inits = {
        "mmm_scratch": (replace(budget.finetune, init="scratch"), budget.finetune.epochs),
        "mmm_pool": (replace(budget.finetune, init=str(out / "pretrain")), budget.finetune.epochs),
    }
    if checkpoint.is_file():
        tuh = replace(budget.finetune, init=str(checkpoint), dim=64, depth=6, heads=8)
        inits["mmm_tuh"] = (tuh, budget.tuh_epochs)
    subsets = channel_subsets(corpus, rows, budget.missing_seeds, seed)
    methods: dict[str, Any] = {
        "de_logreg": de_logreg_method(corpus, rows, targets, folds, low_label, subsets)
    }
    for name, (config, epochs) in inits.items():
        config = replace(config, epochs=epochs, select=downstream)
        runs = out / "runs" / name
        full = [train_fold(corpus, f, targets, names, config, runs / "finetune") for f in folds]
        probe_config = replace(config, freeze_encoder=True, lr=config.lr * 3)
        probe = [train_fold(corpus, f, targets, names, probe_config, runs / "probe") for f in folds]
        few = [train_fold(corpus, f, targets, names, config, runs / "low_label") for f in low_label]
        models = [
            MMMClassifier.from_pretrained(runs / "finetune" / "folds" / f.name / "model")
            for f in folds
        ]
        methods[name] = {
            "balanced_accuracy": _per_subject_summary(full),
            "linear_probe": _per_subject_summary(probe),
            "low_label": _per_subject_summary(few),
            "missing_channels": missing_channels_mmm(
                corpus, models, folds, targets, subsets, config.normalize
            ),
        }
    result = {
        "protocol": {
            "pool": pool,
            "pool_windows": len(pool_rows),
            "downstream_subjects": subjects,
            "test_subjects": subjects[: budget.folds],
            "labels": names,
            "quick": quick,
            "seed": seed,
            "validation": "2 subjects from the training side per fold; "
            "low-label: 3 train, 1 validation",
            "pretrain": {k: v for k, v in vars(pool_config).items() if v is not None},
            "finetune_epochs": budget.finetune.epochs,
            "tuh_finetune_epochs": budget.tuh_epochs,
            "channel_subsets": {k: [list(s) for s in v] for k, v in subsets.items()},
            "imputation": "DE + logistic regression: missing features = 0 after per-subject "
            "standardisation (the subject's mean); MMM: absent nodes excluded",
        },
        "methods": methods,
        "pretraining": {
            "windows": len(pool_rows),
            "hours": round(len(pool_rows) * corpus.config.window / 3600, 3),
            "epochs": pool_config.epochs,
            "final_loss": pretraining["final_train_loss"],
            "heldout_loss": pretraining["best_val_loss"],
            "heldout_baseline": pretraining["val_baseline"],
        },
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    _write_json(out / "results.json", result)
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(results_markdown(result))
    transfer_plots(out, result)
    return result


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


def _keep_mask(corpus: Corpus, keep: tuple[str, ...]) -> np.ndarray:
    mask = np.zeros(corpus.topology.n_nodes, dtype=bool)
    mask[[corpus.topology.index(n) for n in keep]] = True
    return mask


@torch.no_grad()
def missing_channels_mmm(
    corpus, models, folds, targets, subsets, normalize: str
) -> dict[str, float]:
    """Mean over folds, subsets and test subjects of balanced accuracy with fewer channels."""
    from sklearn.metrics import balanced_accuracy_score

    subject_of = corpus.index["subject"].astype(str).to_numpy()
    out = {}
    for key, keeps in subsets.items():
        scores = []
        for model, fold in zip(models, folds, strict=True):
            x, present = corpus.read(fold.test, normalize)  # type: ignore[arg-type]
            for keep in keeps:
                p = present & _keep_mask(corpus, keep)
                xs = np.where(p[..., None], x, 0.0).astype(np.float32)
                pred = model.eval()(torch.from_numpy(xs), torch.from_numpy(p)).argmax(-1).numpy()
                for s in np.unique(subject_of[fold.test]):
                    mine = subject_of[fold.test] == s
                    scores.append(balanced_accuracy_score(targets[fold.test][mine], pred[mine]))
        out[key] = float(np.mean(scores))
    return out


def de_logreg_method(corpus, rows, targets, folds, low_label, subsets) -> dict[str, Any]:
    """DE of the present nodes, standardised per subject, logistic regression (C on validation)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    features = corpus.features[np.sort(rows)]  # only the downstream windows are read
    lookup = {r: i for i, r in enumerate(np.sort(rows))}
    present = corpus.present[np.sort(rows)][0]
    subject_of = corpus.index["subject"].astype(str).to_numpy()
    x_all = features[:, present].reshape(len(features), -1).astype(np.float64)
    standardized = np.empty_like(x_all)
    sorted_rows = np.sort(rows)
    for s in np.unique(subject_of[sorted_rows]):
        mine = subject_of[sorted_rows] == s
        standardized[mine] = (x_all[mine] - x_all[mine].mean(0)) / (x_all[mine].std(0) + 1e-8)

    def matrix(part):
        return standardized[[lookup[r] for r in part]]

    def fit(fold):
        best = None
        for c in (0.01, 0.1, 1.0, 10.0):
            model = LogisticRegression(C=c, max_iter=2000).fit(
                matrix(fold.train), targets[fold.train]
            )
            score = balanced_accuracy_score(targets[fold.val], model.predict(matrix(fold.val)))
            if best is None or score > best[0]:
                best = (score, model)
        return best[1]

    def per_subject(model_folds, transform=None):
        result = {}
        for model, fold in model_folds:
            x = matrix(fold.test) if transform is None else transform(matrix(fold.test))
            pred = model.predict(x)
            for s in np.unique(subject_of[fold.test]):
                mine = subject_of[fold.test] == s
                result.setdefault(s, []).append(
                    balanced_accuracy_score(targets[fold.test][mine], pred[mine])
                )
        return {s: float(np.mean(v)) for s, v in result.items()}

    fitted = [(fit(f), f) for f in folds]
    nodes = [corpus.topology.nodes[i] for i in np.flatnonzero(present)]
    missing = {}
    for key, keeps in subsets.items():
        scores = []
        for keep in keeps:
            dropped = np.repeat([n not in keep for n in nodes], features.shape[-1])
            values = per_subject(fitted, lambda x, d=dropped: np.where(d, 0.0, x))
            scores += list(values.values())
        missing[key] = float(np.mean(scores))
    return {
        "balanced_accuracy": _summary(per_subject(fitted)),
        "linear_probe": None,
        "low_label": _summary(per_subject([(fit(f), f) for f in low_label])),
        "missing_channels": missing,
    }


def _summary(per_subject: dict[str, float]) -> dict[str, Any]:
    values = list(per_subject.values())
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "per_subject": per_subject,
    }


def _per_subject_summary(fold_results: list[dict[str, Any]]) -> dict[str, Any]:
    collected: dict[str, list[float]] = {}
    for r in fold_results:
        for s, v in r["test_per_subject"].items():
            collected.setdefault(s, []).append(v)
    return _summary({s: float(np.mean(v)) for s, v in collected.items()})


def results_markdown(r: dict[str, Any]) -> str:
    """Tables of the results."""
    p, protocol = r["pretraining"], r["protocol"]
    run = "quick" if protocol["quick"] else "full"
    lines = [
        f"Downstream: eegmat rest vs arithmetic, leave-one-subject-out over "
        f"{len(protocol['test_subjects'])} test subjects ({run} run, seed {protocol['seed']}). "
        f"Pretraining pool: {p['windows']} windows ({p['hours']} h), {p['epochs']} epochs; "
        f"held-out reconstruction loss {_f(p['heldout_loss'])} vs "
        f"{_f(p['heldout_baseline'])} for predicting the band mean.",
        "",
        "| method | fine-tuned | linear probe | low-label (3 subjects) "
        "| 12 ch | 8 ch | 4 ch | Muse-like 4 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["methods"].items():
        cells = [_ms(m["balanced_accuracy"]), _ms(m["linear_probe"]), _ms(m["low_label"])]
        cells += [f"{m['missing_channels'][k]:.3f}" for k in ("12", "8", "4", "muse4")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Balanced accuracy per test subject, mean ± std over subjects; missing-channel "
        "columns: mean over subjects, folds and channel subsets, without retraining.",
        f"Runtime: {r['runtime_s']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def _ms(summary: dict[str, Any] | None) -> str:
    return "—" if summary is None else f"{summary['mean']:.3f} ± {summary['std']:.3f}"


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def transfer_plots(out: Path, r: dict[str, Any]) -> None:
    """Bars with per-subject dots; accuracy against channels; the pretraining reconstruction."""
    import shutil

    from mmm_eeg.train.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(r["methods"])
    for i, name in enumerate(names):
        for j, (key, colour) in enumerate((("balanced_accuracy", "C0"), ("linear_probe", "C1"))):
            summary = r["methods"][name][key]
            if summary is None:
                continue
            xpos = i + (j - 0.5) * 0.35
            ax.bar(
                xpos, summary["mean"], 0.33, color=colour, alpha=0.7, label=key if i == 1 else None
            )
            values = list(summary["per_subject"].values())
            ax.scatter(np.full(len(values), xpos), values, color="k", s=8, zorder=3)
    ax.axhline(0.5, ls="--", color="grey")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("balanced accuracy (test subjects)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    _save(fig, out / "plots" / "methods.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        m = r["methods"][name]
        ys = [
            m["missing_channels"]["4"],
            m["missing_channels"]["8"],
            m["missing_channels"]["12"],
            m["balanced_accuracy"]["mean"],
        ]
        ax.plot([4, 8, 12, 19], ys, "-o", label=name)
    ax.set_xlabel("channels kept (of 19)")
    ax.set_ylabel("balanced accuracy")
    ax.legend()
    _save(fig, out / "plots" / "accuracy_vs_channels.png")
    source = out / "pretrain" / "plots" / "reconstruction_vs_mask_ratio.png"
    if source.is_file():
        shutil.copy(source, out / "plots" / "pretraining_reconstruction.png")


def _write_json(path: Path, value: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, default=str))
