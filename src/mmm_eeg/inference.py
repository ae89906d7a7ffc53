"""A trained model with its input contract, reading a user's data in memory.

``load_model`` returns an :class:`MMMModel`: the network (encoder or classifier) plus the
:class:`~mmm_eeg.spec.FeatureSpec` it was trained on. ``model.embed(raw)`` and
``model.predict(raw)`` do what the corpus route does (``preprocess`` → corpus → ``embed`` or
``evaluate``) without touching the disk: the same windows, DE, channel mapping and
standardisation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from mmm_eeg.atomic import atomic_path
from mmm_eeg.errors import UserInputError
from mmm_eeg.io.readers import read_recording
from mmm_eeg.io.recording import Recording
from mmm_eeg.model.autoencoder import MMMAutoencoder
from mmm_eeg.model.classifier import MMMClassifier
from mmm_eeg.model.encoder import MMMEncoder, noise_seed
from mmm_eeg.model.loading import resolve_model
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option
from mmm_eeg.windows import extract_windows

logger = logging.getLogger(__name__)

#: What ``embed``, ``predict`` and ``predict_proba`` read.
EEGData = Any  # mne.io.BaseRaw | mne.BaseEpochs | Recording | (array, ch_names, sfreq)


class MMMModel:
    """A trained MMM network and the input contract it was trained on.

    Parameters
    ----------
    network : MMMEncoder | MMMClassifier
        The weights.
    spec : FeatureSpec | None
        How raw EEG becomes its input; None: ``network.feature_spec``, else the defaults
        (1 s windows, 5-band DE, per-recording standardisation) with a warning.
    spec_origin : str | None
        Where the spec came from (shown by ``repr`` and :meth:`describe_spec`).

    Notes
    -----
    Standardisation of new data follows ``spec.normalize``: the statistics come from the data
    given in one call, or, for ``"fitted"``, from the training windows (saved in the spec).
    Per recording or per subject, one ``Raw`` (or all epochs of one
    ``Epochs``) is treated as one recording of one subject; give a subject's data in one call.
    """

    def __init__(
        self,
        network: MMMEncoder | MMMClassifier,
        spec: FeatureSpec | None = None,
        spec_origin: str | None = None,
    ):
        if not isinstance(network, (MMMEncoder, MMMClassifier)):
            raise UserInputError(
                f"network must be an MMMEncoder or MMMClassifier, got {type(network).__name__}.",
                parameter="network",
            )
        self.network = network.eval()
        if spec is not None:
            origin = spec_origin or "given"
        elif network.feature_spec is not None:
            spec, origin = network.feature_spec, spec_origin or "the network's feature_spec"
        else:
            logger.warning("The model records no feature spec; assuming the default one.")
            spec, origin = FeatureSpec(normalize="recording"), "the default (the model has none)"
        if spec.normalize == "fitted" and spec.statistics is None:
            raise UserInputError(
                "The spec says normalize='fitted' but holds no fitted statistics; give the spec "
                "the model was trained with (its config.json's feature_spec).",
                parameter="spec",
            )
        self.spec, self.spec_origin = spec, origin
        topology = self.encoder.topology
        if tuple(spec.nodes) != topology.nodes:
            raise UserInputError(
                f"The spec's node order ({spec.topology}) is not the model's ({topology.name})."
            )
        if spec.n_inputs != self.encoder.n_inputs:
            raise UserInputError(
                f"The spec gives {spec.n_inputs} values per node ({spec.tokens!r} tokens); the "
                f"model reads {self.encoder.n_inputs} ({self.encoder.tokens!r} tokens). Give "
                "the spec the model was trained with (its config.json's feature_spec).",
                parameter="spec",
            )

    def __repr__(self) -> str:
        kind = "classifier" if self.is_classifier else "encoder"
        return (
            f"MMMModel({kind}, dim={self.encoder.dim}, depth={self.encoder.depth}, "
            f"{self.describe_spec()})"
        )

    def describe_spec(self) -> str:
        """The input contract in one line, and where it came from."""
        return describe_spec(self.spec, self.spec_origin)

    @property
    def encoder(self) -> MMMEncoder:
        """The encoder (the classifier's, for a classifier)."""
        return self.network.encoder if isinstance(self.network, MMMClassifier) else self.network

    @property
    def is_classifier(self) -> bool:
        """Whether ``predict`` is available."""
        return isinstance(self.network, MMMClassifier)

    @property
    def classes(self) -> list[str]:
        """Class names in output order (a classifier only)."""
        self._require_classifier()
        net = self.network
        return net.label_names or [str(i) for i in range(net.n_outputs)]  # type: ignore[union-attr]

    # -- features -------------------------------------------------------------------------------

    def features(
        self, data: EEGData, groups: Sequence[Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """The model's input windows of ``data`` on the topology: standardised DE, the signal,
        or both (the spec's ``tokens``).

        Parameters
        ----------
        data : mne.io.Raw | mne.Epochs | Recording | (ndarray, ch_names, sfreq) | list
            EEG in volts.
        groups : sequence | None
            With a list of recordings (or epochs), the subject (or recording) of each: each
            group is standardised with its own statistics. None: all data given is one group.

        Returns
        -------
        x : ndarray, shape (n_windows, n_nodes, n_inputs), float32
        present : ndarray of bool, shape (n_windows, n_nodes)
        windows : DataFrame
            One row per window: ``start_s`` (seconds from the recording's or epoch's start)
            and, for epochs, ``epoch``.
        """
        recordings = as_recordings(data)
        topology: UnifiedTopology = self.encoder.topology
        if groups is not None and len(groups) != len(recordings):
            raise UserInputError(
                f"groups has {len(groups)} entries for {len(recordings)} recordings or epochs.",
                parameter="groups",
            )
        parts, presents, signals, rows, window_groups = [], [], [], [], []
        # Event-locked models read each given recording (an epoch, cut by the caller) tiled.
        config = replace(self.spec.preprocessing, epoch_tmin=None)
        for i, recording in enumerate(recordings):
            windows = extract_windows(recording, topology, config)
            parts.append(windows.features)
            signals.append(windows.signal)
            presents.append(windows.present)
            window_groups += [i if groups is None else groups[i]] * len(windows.features)
            frame = pd.DataFrame({"start_s": windows.start_s.astype(np.float64)})
            if "epoch" in recording.meta:
                frame.insert(0, "epoch", recording.meta["epoch"])
            rows.append(frame)
        x = np.concatenate(parts) if parts else np.zeros((0, topology.n_nodes, 0))
        present = np.concatenate(presents) if presents else np.zeros((0, topology.n_nodes), bool)
        if len(x) == 0:
            raise UserInputError("No window could be extracted from the data given.")
        x = self.spec.normalizer.fit_transform(
            x, present, None if groups is None else np.asarray(window_groups)
        )
        signal = np.concatenate(signals) if self.spec.tokens != "de" else None
        return self.spec.model_input(x, signal), present, pd.concat(rows, ignore_index=True)

    # -- outputs --------------------------------------------------------------------------------

    def embed(
        self,
        data: EEGData,
        pool: Literal["mean", "cls"] | None = None,
        batch_size: int = 1024,
        return_windows: bool = False,
        groups: Sequence[Any] | None = None,
    ) -> np.ndarray | tuple[np.ndarray, pd.DataFrame]:
        """The unified representation of each window (region tokens and class token).

        Parameters
        ----------
        data : mne.io.Raw | mne.Epochs | Recording | (ndarray, ch_names, sfreq)
            EEG in volts (an array in volts, shape (n_channels, n_samples)).
        pool : {None, "mean", "cls"}
            None: all 18 tokens, (n_windows, 18, dim); "mean": their mean, (n_windows, dim);
            "cls": the class token, (n_windows, dim).
        batch_size : int
            Windows per forward pass.
        return_windows : bool
            Also return the windows' table (``start_s``, ``epoch``; see :meth:`features`).
        groups : sequence | None
            Subject of each recording or epoch, for per-group standardisation (see
            :meth:`features`).

        Returns
        -------
        ndarray, float32
            In window order; with ``return_windows``, also the windows' table.
        """
        if pool is not None:
            check_option("pool", pool, ("mean", "cls"))
        x, present, windows = self.features(data, groups)
        tokens = run_windows(self.encoder, x, present, batch_size)
        if pool == "mean":
            tokens = tokens.mean(1)
        elif pool == "cls":
            tokens = tokens[:, -1]
        return (tokens, windows) if return_windows else tokens

    def predict_proba(self, data: EEGData, batch_size: int = 1024) -> pd.DataFrame:
        """Class probabilities per window: ``start_s`` (``epoch``), one column per class."""
        self._require_classifier()
        x, present, windows = self.features(data)
        logits = torch.from_numpy(run_windows(self.network, x, present, batch_size))
        probabilities = torch.softmax(logits, -1).numpy()
        return pd.concat([windows, pd.DataFrame(probabilities, columns=self.classes)], axis=1)

    def predict(self, data: EEGData, batch_size: int = 1024) -> pd.DataFrame:
        """The most probable class per window: ``start_s`` (``epoch``), ``label``."""
        proba = self.predict_proba(data, batch_size)
        return proba.drop(columns=self.classes).assign(label=self.most_probable(proba))

    def most_probable(self, proba: pd.DataFrame) -> np.ndarray:
        """The class with the highest probability in each row of a ``predict_proba`` table."""
        return np.asarray(self.classes, dtype=object)[proba[self.classes].to_numpy().argmax(1)]

    def _require_classifier(self) -> None:
        if not self.is_classifier:
            raise UserInputError(
                "This model is an encoder: use embed(), or fine-tune a classifier "
                "(mmm-eeg finetune) and load that."
            )


def describe_spec(spec: FeatureSpec, origin: str) -> str:
    """A feature spec in one line (window, DE, standardisation) and where it came from."""
    p = spec.preprocessing
    return (
        f"feature spec: {p.window:g} s windows, {len(p.bands)}-band {p.method} DE, "
        f"normalize={spec.normalize!r}, topology {spec.topology} (from {origin})"
    )


@torch.no_grad()
def run_windows(
    network: MMMEncoder | MMMClassifier,
    x: np.ndarray,
    present: np.ndarray,
    batch_size: int = 1024,
    seed: int | None = 0,
) -> np.ndarray:
    """An encoder's unified tokens, or a classifier's logits, of standardised windows.

    The forward pass of the in-memory route (``MMMModel``), corpus ``embed`` and the
    estimators: the same windows give the same output. Under ``absent="exclude"`` the windows
    are grouped by their present nodes and each group runs as a fixed montage (``for_montage``:
    absent nodes out of the sequence, 37 tokens instead of 80 for 19 channels), which gives the
    same outputs to float rounding. Under ``absent="noise"`` the noise is one stream drawn from
    ``seed`` in window order, and the caller's generator is left as it was: the same windows in
    the same order give the same output for any batches of a multiple of 8 windows (torch
    draws normal numbers 16 at a time, and a window takes 5 per node; other cuts shift the
    stream). ``seed=None`` draws from the caller's generator instead: a caller that cuts one
    sequence of windows into several calls (at such boundaries) seeds once around them
    (:func:`noise_seed`) and gets the output of a single call.

    Returns
    -------
    ndarray, float32
        (n_windows, n_unified, dim) for an encoder, (n_windows, n_outputs) for a classifier.
    """
    training = network.training
    network.eval()
    encoder = network.encoder if isinstance(network, MMMClassifier) else network
    full = network if isinstance(network, MMMClassifier) else network.unified
    if encoder.absent == "exclude":
        patterns, group = np.unique(present, axis=0, return_inverse=True)
        group = group.reshape(-1)
        parts = [
            (np.flatnonzero(group == k), np.flatnonzero(row)) for k, row in enumerate(patterns)
        ]
    else:
        parts = [(np.arange(len(x)), None)]
    out: np.ndarray | None = None
    with noise_seed(seed) if seed is not None else contextlib.nullcontext():
        for rows, nodes in parts:
            fixed = None if nodes is None else network.for_montage(nodes)
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                if fixed is None:
                    result = full(torch.from_numpy(x[chunk]), torch.from_numpy(present[chunk]))
                else:
                    result = fixed(torch.from_numpy(x[chunk][:, nodes]))
                if out is None:
                    out = np.empty((len(x), *result.shape[1:]), dtype=np.float32)
                out[chunk] = result.numpy()
    network.train(training)
    if out is None:
        raise UserInputError("No window to run the network on.")
    return out


def as_recordings(data: EEGData) -> list[Recording]:
    """Turn a ``Raw``, ``Epochs``, :class:`Recording`, list of those, or ``(array, ch_names,
    sfreq)`` into recordings."""
    if isinstance(data, Recording):
        return [data]
    if isinstance(data, tuple) and len(data) == 3:
        array, ch_names, sfreq = data
        return [Recording.from_array(array, sfreq, ch_names)]
    if isinstance(data, Sequence) and not isinstance(data, (str, tuple)):
        return [r for item in data for r in as_recordings(item)]
    import mne

    if isinstance(data, mne.io.BaseRaw):
        return [Recording.from_raw(data)]
    if isinstance(data, mne.BaseEpochs):
        return Recording.from_epochs(data)
    raise UserInputError(
        f"Cannot read EEG from a {type(data).__name__}: give an mne.io.Raw, an mne.Epochs, a "
        "Recording, or a tuple (array in volts of shape (n_channels, n_samples), ch_names, "
        "sfreq).",
        parameter="data",
    )


def load_model(source: str | Path, checkpoint_dir: str | Path | None = None) -> MMMModel:
    """Load a trained model with its input contract.

    Parameters
    ----------
    source : str | path-like
        Anything :func:`~mmm_eeg.model.loading.resolve_model` reads: a registered name
        (:func:`~mmm_eeg.model.registry.list_models`; ``"mmm_base_tuh"`` with its released
        weights), a model directory written by ``save_pretrained`` (a fine-tuned fold model, a
        pretraining run's ``encoder/``), a pretraining run directory, a PhysioPro ``.pt`` file
        (read with the released model's input contract) or a Lightning ``.ckpt`` of ours.
    checkpoint_dir : str | path-like | None
        Where to look first for a registered model's weights file.

    Returns
    -------
    MMMModel
        Its ``describe_spec()`` says which feature spec it uses and where that came from
        (also logged at INFO, shown by ``mmm-eeg --verbose``).
    """
    resolved = resolve_model(source, checkpoint_dir)
    network = resolved.network
    if isinstance(network, MMMAutoencoder):
        network = network.encoder
    model = MMMModel(network, resolved.spec, resolved.spec_origin)
    logger.info("Loaded %s; %s", resolved.source, model.describe_spec())
    return model


def predict_files(
    model: MMMModel, paths: Sequence[str | Path], out: str | Path
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Per-window class probabilities and labels for EEG files, written to CSV or Parquet.

    A file that cannot be read or yields no window is skipped and reported; the rest goes on.

    Parameters
    ----------
    model : MMMModel
        A classifier.
    paths : sequence of str | path-like
        EEG files (any format :func:`~mmm_eeg.io.readers.read_recording` reads).
    out : str | path-like
        ``.csv`` or ``.parquet``; written atomically.

    Returns
    -------
    table : DataFrame
        ``file``, ``start_s``, one probability column per class, ``label``.
    skipped : list of (path, reason)
    """
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise UserInputError(
            f"{out}: predictions are written as .csv or .parquet; give one of those suffixes.",
            parameter="out",
        )
    model._require_classifier()
    tables, skipped = [], []
    for path in paths:
        try:
            proba = model.predict_proba(read_recording(path))
        except UserInputError as err:
            skipped.append((str(path), str(err)))
            continue
        tables.append(proba.assign(label=model.most_probable(proba), file=str(path)))
    if not tables:
        raise UserInputError(
            "No prediction: every file was skipped ("
            + "; ".join(f"{p}: {r}" for p, r in skipped)
            + ")."
        )
    table = pd.concat(tables, ignore_index=True)
    table = table[["file", *[c for c in table.columns if c != "file"]]]
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return table, skipped
