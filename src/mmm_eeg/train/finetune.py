"""Fine-tuning and evaluation: protocols, validation-based model selection, one test per fold.

``RES/`` receives ``config.yaml``, ``summary.json`` (mean ± std over folds and per-fold metrics
with the exact split), ``summary.md``, ``folds/<name>/`` (metrics.json, the selected classifier
in our format, training metrics CSV) and ``plots/``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix

from mmm_eeg.atomic import atomic_path, check_output_folder, write_json
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.labels import label_targets
from mmm_eeg.errors import UserInputError
from mmm_eeg.inference import describe_spec, run_windows
from mmm_eeg.model import MMMClassifier, channel_dropout, noise_seed
from mmm_eeg.model.loading import (
    CHECKPOINT_KEY,
    checkpoint_entry,
    load_encoder,
    resolve_model,
)
from mmm_eeg.normalization import Normalizer, check_label_varies
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.train.config import FinetuneConfig, write_config
from mmm_eeg.train.data import CorpusBatches, CorpusDataModule, training_normalization
from mmm_eeg.train.metrics import (
    balanced_accuracy,
    classification_metrics,
    per_subject_balanced_accuracy,
)
from mmm_eeg.train.plots import finetune_plots
from mmm_eeg.train.protocols import Fold, make_folds
from mmm_eeg.train.selection import select_windows
from mmm_eeg.train.trainer import (
    Snapshots,
    batch_generator,
    build_trainer,
    is_global_zero,
    param_groups,
    warmup_cosine,
)
from mmm_eeg.validation import check_option

logger = logging.getLogger(__name__)


class FinetuneModule(L.LightningModule):
    """Cross-entropy training of :class:`MMMClassifier`; validation balanced accuracy."""

    def __init__(self, classifier: MMMClassifier, config: FinetuneConfig, class_weights=None):
        super().__init__()
        self.save_hyperparameters({"config": asdict(config)})
        self.classifier, self.config = classifier, config
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weights)
        # The confusion matrix is gathered from every rank under DDP (torchmetrics), so
        # selection and early stopping see the whole validation split.
        self.val_confusion = MulticlassConfusionMatrix(classifier.n_outputs)
        # The encoder weights that train at all (the reference's unused norms never do).
        self._encoder_params = [p for p in classifier.encoder.parameters() if p.requires_grad]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = checkpoint_entry(self.classifier, "classifier.")

    def training_step(self, batch, batch_idx):
        x, present, y = batch
        if self.config.channel_dropout > 0:
            generator = batch_generator(
                self.config.seed, 0, self.current_epoch, batch_idx, self.global_rank
            )
            keep = channel_dropout(
                present.cpu(),
                self.config.channel_dropout,
                self.config.channel_dropout_min,
                generator,
            ).to(present.device)
            x, present = x * keep[..., None], keep
        loss = self.loss_fn(self.classifier(x, present), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, present, y = batch
        logits = self.classifier(x, present)
        self.log("val_loss", self.loss_fn(logits, y), sync_dist=True)
        self.val_confusion.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        self.log("val_balanced_accuracy", balanced_accuracy(self.val_confusion.compute()))
        self.val_confusion.reset()

    def on_train_epoch_start(self) -> None:
        if self.config.freeze_epochs:  # AdamW skips weights without a gradient
            frozen = self.current_epoch < self.config.freeze_epochs
            for p in self._encoder_params:
                p.requires_grad_(not frozen)

    def configure_optimizers(self):
        pretrained = self.config.init not in (None, "", "scratch")
        scales = encoder_lr_scales(
            self.classifier.encoder.depth,
            self.config.encoder_lr_scale if pretrained else 1.0,
            self.config.layer_decay,
        )
        groups = param_groups(self.classifier, self.config.weight_decay, scales)
        for g in groups:
            g["lr"] = self.config.lr * g.pop("lr_scale")
        optimizer = torch.optim.AdamW(groups, lr=self.config.lr)
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, 0.05))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def encoder_lr_scales(depth: int, base: float, layer_decay: float) -> dict[str, float]:
    """Learning-rate multipliers by parameter-name prefix (first match wins, as
    :func:`~mmm_eeg.train.pretrain.param_groups` reads them): block i of ``depth`` gets
    ``base * layer_decay ** (depth - i)``, the rest of the encoder (embeddings, tokens)
    ``base * layer_decay ** (depth + 1)``; the head is not listed (1)."""
    scales = {f"encoder.blocks.{i}.": base * layer_decay ** (depth - i) for i in range(depth)}
    scales["encoder."] = base * layer_decay ** (depth + 1)
    return scales


@torch.no_grad()
def predict(
    classifier: MMMClassifier,
    corpus: Corpus,
    rows: np.ndarray,
    normalize: str | Normalizer,
    batch_size: int = 1024,
):
    """Class probabilities for windows ``rows`` (in that order)."""
    classifier.eval()
    probabilities = []
    for start in range(0, len(rows), batch_size):
        x, present = corpus.read(
            rows[start : start + batch_size],
            normalize,
            classifier.encoder.tokens,  # type: ignore[arg-type]
        )
        logits = classifier(torch.from_numpy(x), torch.from_numpy(present))
        probabilities.append(torch.softmax(logits, -1).numpy())
    return np.concatenate(probabilities) if probabilities else np.zeros((0, classifier.n_outputs))


def train_fold(
    corpus, fold: Fold, targets, names, config: FinetuneConfig, out: Path
) -> dict[str, Any]:
    """Fit on the fold's training windows, select on validation, score the test windows once."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    L.seed_everything(config.seed, workers=True, verbose=False)
    normalize = training_normalization(corpus, fold.train, config.normalize)
    spec = corpus.feature_spec(normalize, config.tokens)  # saved with the model
    encoder = load_encoder(config.init, corpus.topology, feature_spec=spec, **config.architecture)
    classifier = MMMClassifier(
        encoder, len(names), config.hidden, config.dropout, config.freeze_encoder, label_names=names
    )
    weights = None
    if config.class_weights == "balanced":
        counts = np.bincount(targets[fold.train], minlength=len(names)).astype(np.float64)
        weights = torch.tensor(
            counts.sum() / (len(names) * np.maximum(counts, 1)), dtype=torch.float32
        )
    module = FinetuneModule(classifier, config, weights)
    batch = min(config.batch_size, len(fold.train))
    train = CorpusBatches(
        corpus, fold.train, batch, targets, normalize,
        seed=config.seed, workers=config.loader_workers, tokens=encoder.tokens,
    )  # fmt: skip
    val = CorpusBatches(
        corpus, fold.val, 1024, targets, normalize,
        shuffle=False, drop_last=False, workers=config.loader_workers, tokens=encoder.tokens,
    )  # fmt: skip
    folder = out / "folds" / fold.name
    selector = ModelCheckpoint(
        dirpath=folder / "checkpoints",
        filename="best",
        monitor="val_balanced_accuracy",
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
    )
    stopper = EarlyStopping("val_balanced_accuracy", mode="max", patience=config.patience)
    callbacks = [selector, stopper]
    if config.snapshot_every_n_epochs:
        every = config.snapshot_every_n_epochs
        callbacks.append(Snapshots(folder / "snapshots", every, lambda m: m.classifier))
    trainer = build_trainer(config, folder, callbacks, config.epochs)
    trainer.fit(module, datamodule=CorpusDataModule(train, val))
    best = torch.load(selector.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(best)
    probabilities = predict(classifier, corpus, fold.test, normalize)
    test = classification_metrics(targets[fold.test], probabilities, len(names))
    subjects = corpus.index["subject"].astype(str).to_numpy()[fold.test]
    per_subject = per_subject_balanced_accuracy(
        targets[fold.test], probabilities.argmax(1), subjects
    )
    result = {
        "fold": fold.describe(corpus.index),
        "test": test,
        "test_per_subject": per_subject,
        "best_epoch_val_balanced_accuracy": float(selector.best_model_score or float("nan")),
        "metrics_csv": str(folder / "logs" / "metrics.csv"),
    }
    if trainer.is_global_zero:  # every rank holds the same model and scores; one writes
        metadata = {"fold": fold.name, "init": config.init}
        classifier.save_pretrained(folder / "model", metadata=metadata)
        write_json(folder / "metrics.json", result)
        Path(selector.best_model_path).unlink(missing_ok=True)  # the safetensors model is kept
    return result


def finetune(
    corpus_path: str | Path, out: str | Path, config: FinetuneConfig, resume: bool = False
) -> dict[str, Any]:
    """Run a protocol; returns (and writes) the summary.

    ``resume=True`` reuses the folds already finished in ``out`` (their ``metrics.json``) and
    trains the others; a fold interrupted mid-way is retrained from its start (same seed).
    """
    corpus = Corpus(corpus_path)
    out = check_output_folder(Path(out))
    rows = select_windows(corpus.index, config.select)
    rows = rows[corpus.index["label"].notna().to_numpy()[rows]]
    if len(rows) == 0:
        raise UserInputError(
            "No labelled window in the selection; check select and the labels.",
            parameter="select",
        )
    targets, names = label_targets(corpus.index, rows)
    index = corpus.index
    check_label_varies(config.normalize, targets[rows], {
        "subject": index["subject"].astype(str).to_numpy()[rows],
        "recording": index["recording"].astype(str).to_numpy()[rows],
    })  # fmt: skip
    folds = make_folds(
        corpus.index,
        rows,
        config.protocol,
        config.test_subjects,
        config.k,
        config.val_subjects,
        config.seed,
    )
    # Under DDP, Lightning starts ranks 1.. when rank 0 first fits, after rank 0 wrote the
    # config: only rank 0 decides whether the folder may be used.
    if is_global_zero() and (out / "config.yaml").is_file() and not resume:
        raise UserInputError(
            f"{out} already holds results; pass resume=True to continue them.", parameter="resume"
        )
    if is_global_zero() and resume and (out / "config.yaml").is_file():
        previous = yaml.safe_load((out / "config.yaml").read_text())
        if previous != asdict(config):
            raise UserInputError(
                f"{out} was run with other options; resume it with those or choose a new out.",
                parameter="out",
            )
    if is_global_zero():
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out / "config.yaml")
    results = []
    for fold in folds:
        done = out / "folds" / fold.name / "metrics.json"
        if resume and done.is_file():
            results.append(json.loads(done.read_text()))
        else:
            results.append(train_fold(corpus, fold, targets, names, config, out))
    summary = summarize(results, names, config)
    if is_global_zero():
        write_json(out / "summary.json", summary)
        with atomic_path(out / "summary.md") as tmp:
            tmp.write_text(summary_markdown(summary))
        finetune_plots(out, results, names)
    return summary


def summarize(
    results: list[dict[str, Any]], names: list[str], config: FinetuneConfig
) -> dict[str, Any]:
    """Mean and std over folds of each metric, per-subject balanced accuracy, the folds."""
    out: dict[str, Any] = {
        "protocol": config.protocol,
        "init": config.init,
        "freeze_encoder": config.freeze_encoder,
        "labels": names,
        "folds": results,
    }
    for metric in ("accuracy", "balanced_accuracy", "macro_f1", "auroc"):
        values = [r["test"][metric] for r in results if r["test"][metric] is not None]
        out[metric] = (
            {"mean": float(np.mean(values)), "std": float(np.std(values))} if values else None
        )
    per_subject = {s: v for r in results for s, v in r["test_per_subject"].items()}
    out["per_subject_balanced_accuracy"] = per_subject
    values = list(per_subject.values())
    out["subject_balanced_accuracy"] = {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
    }
    return out


def summary_markdown(summary: dict[str, Any]) -> str:
    """The summary as a markdown table."""
    lines = [
        f"Protocol `{summary['protocol']}`, init `{summary['init']}`"
        f"{' (frozen encoder)' if summary['freeze_encoder'] else ''}; classes {summary['labels']}.",
        "",
        "| fold | test windows | accuracy | balanced accuracy | macro-F1 | AUROC |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["folds"]:
        t = r["test"]
        auroc = "—" if t["auroc"] is None else f"{t['auroc']:.3f}"
        lines.append(
            f"| {r['fold']['name']} | {t['n_windows']} | {t['accuracy']:.3f} | "
            f"{t['balanced_accuracy']:.3f} | {t['macro_f1']:.3f} | {auroc} |"
        )
    b = summary["balanced_accuracy"]
    lines += ["", f"Balanced accuracy over folds: {b['mean']:.3f} ± {b['std']:.3f}"]
    return "\n".join(lines) + "\n"


def evaluate(
    model_dir: str | Path,
    corpus_path: str | Path,
    select: str | None = None,
    normalize: str | None = None,
) -> dict[str, Any]:
    """Score a saved classifier on a corpus's windows with the classifier's labels.

    ``normalize`` None: the standardisation the model was trained with (its feature spec);
    a corpus made with other preprocessing than the model's is refused.
    """
    classifier = resolve_model(model_dir).network
    if not isinstance(classifier, MMMClassifier):
        raise UserInputError(
            f"{model_dir} holds a {type(classifier).__name__}, not a classifier: evaluate "
            "scores a fine-tuned model (RES/folds/NAME/model)."
        )
    corpus = Corpus(corpus_path)
    normalize = input_normalization(classifier.feature_spec, corpus, normalize)
    names = classifier.label_names or [str(i) for i in range(classifier.n_outputs)]
    rows = select_windows(corpus.index, select)
    targets, _ = label_targets(corpus.index, rows, names)
    rows = rows[targets[rows] >= 0]
    if len(rows) == 0:
        raise UserInputError(
            f"No window of {corpus_path} carries one of the model's labels {names}."
        )
    y = targets[rows]
    probabilities = predict(classifier, corpus, rows, normalize)
    result = classification_metrics(y, probabilities, len(names))
    subjects = corpus.index["subject"].astype(str).to_numpy()[rows]
    result["per_subject_balanced_accuracy"] = per_subject_balanced_accuracy(
        y, probabilities.argmax(1), subjects
    )
    result["labels"] = names
    return result


def input_normalization(
    spec: FeatureSpec | None, corpus: Corpus, normalize: str | None
) -> str | Normalizer:
    """The standardisation to read ``corpus`` with for a model of ``spec``, after checking that
    the corpus holds the features the model was trained on (when the model records them): the
    model's own (with its saved statistics when fitted) unless ``normalize`` is given."""
    if normalize == "fitted" and (spec is None or spec.statistics is None):
        raise UserInputError(
            "normalize='fitted' reads the statistics a model saved from its training windows, "
            "and this model has none; leave normalize unset (the model's own) or choose "
            "another.",
            parameter="normalize",
        )
    if spec is None:
        return normalize or "recording"
    spec.check_features(corpus.feature_spec(), f"corpus {corpus.path}")
    if normalize is None or normalize == spec.normalize:
        return spec.normalizer if spec.statistics is not None else spec.normalize
    return normalize


def embed(
    corpus_path: str | Path,
    init: str,
    out: str | Path,
    select: str | None = None,
    pool: str = "none",
    normalize: str | None = None,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Write the unified representation of each window to Parquet with the index columns.

    The model is read by :func:`~mmm_eeg.model.loading.resolve_model` and run by
    :func:`~mmm_eeg.inference.run_windows`, as :func:`mmm_eeg.load_model` ``.embed`` does, so
    both give the same vectors for the same windows. ``normalize`` None: the model's own (its
    feature spec; ``"recording"`` when it has none).

    Returns
    -------
    dict
        ``windows`` (written), ``spec`` (the feature spec used, in one line, with its origin).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_option("pool", pool, ("none", "mean"))
    corpus = Corpus(corpus_path)
    resolved = resolve_model(init)
    if resolved.encoder.topology != corpus.topology:
        raise UserInputError(
            f"{init}: its topology {resolved.encoder.topology.name!r} differs from the "
            f"corpus's {corpus.topology.name!r}; preprocess the data onto the model's topology."
        )
    normalize = input_normalization(resolved.spec, corpus, normalize)
    spec, origin = resolved.spec, resolved.spec_origin
    if spec is None:
        spec = corpus.feature_spec(normalize)  # type: ignore[arg-type]
        origin = "the corpus's preprocessing (the model records none)"
    elif str(normalize) != spec.normalize:
        spec = replace(spec, normalize=normalize, statistics=None)
        origin = f"{origin}; normalize given"
    rows = select_windows(corpus.index, select)
    if len(rows) == 0:
        raise UserInputError(f"No window of {corpus_path} matches select={select!r}.")
    chunks = []
    step = batch_size * 16  # bounded memory; one noise stream, as one in-memory call draws it
    with noise_seed(0):
        for start in range(0, len(rows), step):
            x, present = corpus.read(
                rows[start : start + step],
                normalize,
                resolved.encoder.tokens,  # type: ignore[arg-type]
            )
            tokens = run_windows(resolved.encoder, x, present, batch_size, seed=None)
            chunks.append(tokens.mean(1) if pool == "mean" else tokens.reshape(len(tokens), -1))
    vectors = np.concatenate(chunks)
    table = pa.Table.from_pandas(
        corpus.index.iloc[rows].reset_index(drop=True), preserve_index=False
    )
    width = vectors.shape[1]
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), width)
    table = table.append_column("embedding", column)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    return {"windows": len(rows), "spec": describe_spec(spec, origin)}
