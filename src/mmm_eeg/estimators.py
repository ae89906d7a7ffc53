"""scikit-learn estimators: DE features on the topology, frozen MMM embeddings, fine-tuning.

Both read epochs as scikit-learn reads samples: ``X`` of shape (n_epochs, n_channels,
n_times), in volts, with the channel names and rate given as parameters (as MNE's decoding
estimators and braindecode do). They clone, compose into a ``Pipeline`` and cross-validate::

    pipe = make_pipeline(MMMEmbedder("mmm_base_tuh", sfreq=500, ch_names=names),
                         StandardScaler(), LogisticRegression())
    cross_val_score(pipe, X, y, groups=subjects, cv=LeaveOneGroupOut())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from mmm_eeg.baselines import logistic_search
from mmm_eeg.errors import UserInputError
from mmm_eeg.features import DEFAULT_BANDS, differential_entropy
from mmm_eeg.inference import MMMModel, load_model, run_windows
from mmm_eeg.io.recording import Recording
from mmm_eeg.mapping import DEFAULT_TOLERANCE_MM
from mmm_eeg.model.classifier import MMMClassifier
from mmm_eeg.model.encoder import noise_seed
from mmm_eeg.normalization import NORMALIZATIONS, Normalizer, check_label_varies
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option


def _check_epochs(X: Any, n_channels: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[1] != n_channels:
        raise UserInputError(
            f"X must be epochs of shape (n_epochs, {n_channels} channels, n_times), got "
            f"{X.shape}; as from mne.Epochs.get_data().",
            parameter="X",
        )
    if not np.all(np.isfinite(X)):
        raise UserInputError("X holds NaN or infinite samples.", parameter="X")
    return X


def _epoch_recordings(X: Any, sfreq: float, ch_names: Sequence[str]) -> list[Recording]:
    """Each epoch of ``X`` as a recording (``meta["epoch"]``: its index)."""
    X = _check_epochs(X, len(ch_names))
    names = list(ch_names)
    return [Recording(e, float(sfreq), names, meta={"epoch": i}) for i, e in enumerate(X)]


def _epoch_index(windows: Any, n_epochs: int) -> np.ndarray:
    """The epoch of each window; every epoch must have given at least one."""
    epochs = windows["epoch"].to_numpy()
    if len(np.unique(epochs)) != n_epochs:
        raise UserInputError(
            "Some epochs are shorter than one window (or lost every window to quality "
            "checks); use longer epochs.",
            parameter="X",
        )
    return epochs


def _mean_per_epoch(values: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The mean of ``values`` (one row per window) over each epoch's windows."""
    n = int(epochs.max()) + 1
    sums = np.zeros((n, *values.shape[1:]), dtype=np.float64)
    np.add.at(sums, epochs, values)
    counts = np.bincount(epochs, minlength=n).reshape(-1, *([1] * (values.ndim - 1)))
    return (sums / counts).astype(values.dtype)


def _standardised(
    base: MMMModel, normalize: str | None, recordings: list[Recording], y: Any, groups: Any
) -> tuple[MMMModel, tuple[np.ndarray, np.ndarray, Any] | None]:
    """``base`` with the standardisation asked for: ``None`` keeps the model's own (refused
    per subject when every group carries one label), ``"fitted"`` fits it on the windows of
    ``recordings`` (the training epochs) and keeps the statistics for every later call.

    With ``"fitted"``, also the training windows' ``(x, present, windows)`` as the new model
    reads them (their DE computed once, for the statistics and the input both); else None.
    """
    if normalize is not None:
        check_option("normalize", normalize, NORMALIZATIONS)
    chosen = normalize or base.spec.normalize
    if y is not None and groups is not None:  # the groups standardise either mode here
        groups_of = {"subject": np.asarray(groups), "recording": np.asarray(groups)}
        check_label_varies(chosen, np.asarray(y), groups_of)
    if normalize is None:
        return base, None
    if normalize != "fitted":
        spec = replace(base.spec, normalize=normalize, statistics=None)
        return MMMModel(base.network, spec, f"{base.spec_origin}; normalize={normalize!r}"), None
    raw = MMMModel(base.network, replace(base.spec, normalize="none", statistics=None))
    x, present, windows = raw.features(recordings, None if groups is None else list(groups))
    n_bands = base.spec.n_bands  # DE comes first in the input; raw tokens have none
    if n_bands:
        normalizer = Normalizer.fit(x[..., :n_bands], present)
        x = x.copy()
        x[..., :n_bands] = normalizer.fit_transform(x[..., :n_bands], present)
    else:
        shape = (len(base.spec.nodes), len(base.spec.preprocessing.bands))
        normalizer = Normalizer("fitted", "node", np.zeros(shape), np.ones(shape))
    spec = replace(base.spec, normalize="fitted", statistics=normalizer.to_dict())
    model = MMMModel(base.network, spec, f"{base.spec_origin}; fitted on the training epochs")
    return model, (x, present, windows)


class DifferentialEntropy(TransformerMixin, BaseEstimator):
    """Each epoch's differential entropy per node and band of the unified topology.

    Parameters
    ----------
    sfreq : float
        Sampling rate of ``X`` in Hz.
    ch_names : sequence of str
        Channel names of ``X``'s second axis; mapped onto the topology by name or position.
    bands : sequence of (name, low, high) | None
        Frequency bands in Hz (None: the 5 standard bands).
    method : {"fft", "filter"}
        DE definition (see :mod:`mmm_eeg.features`).
    montage : str | None
        Positions of channels that are not nodes: an MNE built-in montage name or a montage
        file (as :meth:`~mmm_eeg.topology.UnifiedTopology.map_channels` reads them).
    on_unknown : {"raise", "drop"}
        Channel names that are neither nodes, aliases nor positioned electrodes (``X``, ``nd``,
        a trigger): an error, or left out.
    tolerance_mm : float
        A channel matched by position feeds its nearest node only within this distance.
    bipolar : {"exclude", "midpoint", "raise"}
        Bipolar derivations (``FP1-F7``): left out, fed to the node nearest their midpoint, or
        an error.

    Notes
    -----
    ``transform`` returns (n_epochs, n_nodes * n_bands), node-major; nodes that no channel
    feeds are 0. The whole epoch is one window.
    """

    def __init__(
        self,
        sfreq: float = 250.0,
        ch_names: Sequence[str] = (),
        bands: Sequence[tuple[str, float, float]] | None = None,
        method: Literal["fft", "filter"] = "fft",
        montage: str | None = None,
        on_unknown: Literal["raise", "drop"] = "raise",
        tolerance_mm: float = DEFAULT_TOLERANCE_MM,
        bipolar: Literal["exclude", "midpoint", "raise"] = "exclude",
    ) -> None:
        self.sfreq = sfreq
        self.ch_names = ch_names
        self.bands = bands
        self.method = method
        self.montage = montage
        self.on_unknown = on_unknown
        self.tolerance_mm = tolerance_mm
        self.bipolar = bipolar

    def fit(self, X: Any, y: Any = None) -> DifferentialEntropy:
        """Map the channels onto the topology and check ``X``."""
        check_option("method", self.method, ("fft", "filter"))
        self.mapping_ = UnifiedTopology.default().map_channels(
            list(self.ch_names), self.montage, tolerance_mm=self.tolerance_mm,
            on_unknown=self.on_unknown, bipolar=self.bipolar,
        )  # fmt: skip
        _check_epochs(X, len(self.ch_names))
        self.n_features_out_ = self.mapping_.topology.n_nodes * len(self.bands or DEFAULT_BANDS)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """DE of every epoch, (n_epochs, n_nodes * n_bands)."""
        check_is_fitted(self, "mapping_")
        X = _check_epochs(X, len(self.ch_names))
        window = X.shape[2] / self.sfreq
        bands = self.bands or DEFAULT_BANDS
        out = np.stack(
            [
                differential_entropy(epoch, self.sfreq, bands, window, method=self.method)[0]
                for epoch in X
            ]
        )  # (n_epochs, n_channels, n_bands)
        return self.mapping_.to_nodes(out, axis=1).reshape(len(X), -1)


class GroupStandardScaler(TransformerMixin, BaseEstimator):
    """Standardise every feature within each group of samples, with the group's own statistics.

    Per subject, this is the standardisation the transfer benchmark found to matter most
    (docs/benchmarks.md): a new subject is scaled by its own mean and spread, computed from its
    unlabelled samples, never from other subjects'. A feature constant within a group (a node
    no channel feeds) becomes 0. Nothing is learned in ``fit``.

    Parameters
    ----------
    by : {"group", "fitted"}
        ``"group"``: each group with its own statistics (transductive, as above);
        ``"fitted"``: one mean and std per feature fitted on the training samples in ``fit``
        and used for every later sample, groups ignored (a ``StandardScaler``; for traits,
        where every group carries one label and per-group statistics would remove it).

    Notes
    -----
    Pass ``groups`` (the subject of each sample) to ``fit_transform`` / ``transform``; in a
    pipeline through scikit-learn's metadata routing (see :class:`MMMEmbedder`). Without
    groups, the samples of one call are one group. With ``by="group"``, ``fit`` refuses labels
    ``y`` that never vary within a group.
    """

    def __init__(self, by: Literal["group", "fitted"] = "group") -> None:
        self.by = by

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> GroupStandardScaler:
        """Check ``X`` (2-D, finite); ``by="fitted"``: learn each feature's mean and std."""
        check_option("by", self.by, ("group", "fitted"))
        X = self._check(X)
        self.n_features_in_ = X.shape[1]
        if self.by == "fitted":
            self.normalizer_ = Normalizer.fit(X[..., None], np.ones(X.shape, dtype=bool))
        elif y is not None and groups is not None:
            remedy = "GroupStandardScaler(by='fitted') (de_logistic_regression(scaling='fitted'))"
            check_label_varies("subject", np.asarray(y), {"subject": np.asarray(groups)}, remedy)
        return self

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> np.ndarray:
        """``fit`` then ``transform`` (with the same groups)."""
        return self.fit(X, y, groups).transform(X, groups)

    def transform(self, X: Any, groups: Any = None) -> np.ndarray:
        """``X`` standardised per group: (x - group mean) / group std (population std), float32."""
        check_is_fitted(self, "n_features_in_")
        X = self._check(X)
        if X.shape[1] != self.n_features_in_:
            raise UserInputError(
                f"X has {X.shape[1]} features; this scaler was fitted on {self.n_features_in_}.",
                parameter="X",
            )
        labels = np.zeros(len(X), dtype=int) if groups is None else np.asarray(groups)
        if len(labels) != len(X):
            raise UserInputError(
                f"groups has {len(labels)} entries for {len(X)} samples.", parameter="groups"
            )
        # The corpus's own per-group, per-feature standardisation: each feature as a "node"
        # with one "band", every one present.
        present = np.ones(X.shape, dtype=bool)
        normalizer = self.normalizer_ if self.by == "fitted" else Normalizer("subject", "node")
        return normalizer.fit_transform(X[..., None], present, labels)[..., 0]

    @staticmethod
    def _check(X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise UserInputError(
                f"X must be (n_samples, n_features), got shape {X.shape}.", parameter="X"
            )
        if not np.all(np.isfinite(X)):
            raise UserInputError("X holds NaN or infinite values.", parameter="X")
        return X


def de_logistic_regression(
    sfreq: float,
    ch_names: Sequence[str],
    random_state: int = 0,
    inner_splits: int = 4,
    scaling: Literal["group", "fitted"] = "group",
) -> Pipeline:
    """The DE + logistic regression baseline of the transfer benchmark, as one ``Pipeline``.

    :class:`DifferentialEntropy` of each epoch on the topology, :class:`GroupStandardScaler` per
    subject, then a logistic regression whose C is chosen by grouped inner cross-validation
    (:func:`mmm_eeg.baselines.logistic_search`). Fit and predict with the subjects::

        with sklearn.config_context(enable_metadata_routing=True):
            pipe = de_logistic_regression(500.0, raw.ch_names)
            cross_val_score(pipe, X, y, cv=LeaveOneGroupOut(), params={"groups": subjects})

    Parameters
    ----------
    sfreq : float
        Sampling rate of the epochs in Hz.
    ch_names : sequence of str
        Their channel names.
    random_state : int
        Seed of the solver.
    inner_splits : int
        Folds of the inner cross-validation that chooses C; each training set needs at least
        this many subjects.
    scaling : {"group", "fitted"}
        The scaler's ``by``: per subject (a state task), or fitted on the training epochs (a
        trait, one label per subject).
    """
    import sklearn
    from sklearn.pipeline import make_pipeline

    if not sklearn.get_config()["enable_metadata_routing"]:
        raise UserInputError(
            "de_logistic_regression routes the subjects to its scaler and inner "
            "cross-validation; build and use it inside sklearn.config_context("
            "enable_metadata_routing=True) (or after sklearn.set_config(...))."
        )
    scaler = GroupStandardScaler(by=scaling)
    scaler.set_fit_request(groups=True).set_transform_request(groups=True)
    return make_pipeline(
        DifferentialEntropy(sfreq, ch_names), scaler, logistic_search(random_state, inner_splits)
    )


class MMMEmbedder(TransformerMixin, BaseEstimator):
    """Frozen MMM embeddings of epochs: the encoder's tokens, pooled over each epoch's windows.

    Parameters
    ----------
    model : str
        What :func:`mmm_eeg.load_model` reads: a registered name (``"mmm_base_tuh"``), a
        model directory, a pretraining run or a ``.pt`` file.
    sfreq : float
        Sampling rate of ``X`` in Hz.
    ch_names : sequence of str
        Channel names of ``X``'s second axis.
    pool : {"mean", "cls"}
        Tokens to keep per window: the mean of the 18 region and class tokens, or the class
        token; the windows of an epoch are then averaged.
    checkpoint_dir : str | None
        Where to look first for a registered model's weights.
    normalize : str | None
        None: the model's own standardisation; ``"fitted"``: statistics fitted on the epochs
        given to ``fit`` and used for every later call; or another mode of
        :data:`~mmm_eeg.normalization.NORMALIZATIONS`.

    Notes
    -----
    Standardisation follows the model's feature spec (per subject for ``mmm_base_tuh``), with
    the statistics of each group of epochs: pass ``groups`` (the subject of each epoch) to
    ``fit_transform``/``transform``, through scikit-learn's metadata routing in a pipeline
    (``set_config(enable_metadata_routing=True)``, ``MMMEmbedder(...).set_transform_request(
    groups=True)``, ``cross_val_score(..., params={"groups": subjects})``). Without groups, the
    epochs of one call are one group.
    """

    def __init__(
        self,
        model: str = "mmm_base_tuh",
        sfreq: float = 250.0,
        ch_names: Sequence[str] = (),
        pool: Literal["mean", "cls"] = "mean",
        checkpoint_dir: str | None = None,
        normalize: str | None = None,
    ) -> None:
        self.model = model
        self.sfreq = sfreq
        self.ch_names = ch_names
        self.pool = pool
        self.checkpoint_dir = checkpoint_dir
        self.normalize = normalize

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> MMMEmbedder:
        """Load the model (no weight is trained; ``normalize="fitted"`` fits the statistics)
        and check ``X``."""
        check_option("pool", self.pool, ("mean", "cls"))
        base = load_model(self.model, checkpoint_dir=self.checkpoint_dir)
        recordings = _epoch_recordings(X, self.sfreq, self.ch_names)
        self.model_: MMMModel = _standardised(base, self.normalize, recordings, y, groups)[0]
        return self

    def fit_transform(self, X: Any, y: Any = None, groups: Any = None) -> np.ndarray:
        """``fit`` then ``transform`` (with the same groups)."""
        return self.fit(X, y, groups).transform(X, groups)

    def transform(self, X: Any, groups: Any = None) -> np.ndarray:
        """One vector per epoch, (n_epochs, dim); ``groups``: the subject of each epoch."""
        check_is_fitted(self, "model_")
        recordings = _epoch_recordings(X, self.sfreq, self.ch_names)
        tokens, windows = self.model_.embed(
            recordings, pool=self.pool, return_windows=True,
            groups=None if groups is None else list(groups),
        )  # fmt: skip
        return _mean_per_epoch(tokens, _epoch_index(windows, len(recordings)))


class MMMClassifierEstimator(ClassifierMixin, BaseEstimator):
    """Fine-tune an MMM classifier on epochs, scikit-learn style (``fit`` / ``predict``).

    Every window of an epoch carries the epoch's label while training; an epoch's
    probabilities are the mean of its windows'.

    Parameters
    ----------
    model : str
        The encoder to start from: a registered name (``"mmm_base_tuh"``, ``"mmm_small"``
        for a random one), a model directory or a pretraining run (see
        :func:`mmm_eeg.load_model`).
    sfreq : float
        Sampling rate of ``X`` in Hz.
    ch_names : sequence of str
        Channel names of ``X``'s second axis.
    epochs : int
        Passes over the training windows.
    lr : float
        AdamW learning rate (head and encoder).
    batch_size : int
        Windows per step.
    freeze_encoder : bool
        Train the head only (a linear probe with a small MLP).
    random_state : int
        Seed of the weights' initialisation and the batches' order.
    checkpoint_dir : str | None
        Where to look first for a registered model's weights.
    normalize : str | None
        None: the model's own standardisation (refused per subject when every subject in
        ``groups`` carries one label); ``"fitted"``: statistics fitted on the training epochs.

    Notes
    -----
    Standardisation follows the model's feature spec with ``groups`` (the subject of each
    epoch) given to ``fit`` / ``predict`` / ``predict_proba`` (metadata routing in a pipeline;
    see :class:`MMMEmbedder`); without groups, the epochs of one call are one group.
    """

    def __init__(
        self,
        model: str = "mmm_base_tuh",
        sfreq: float = 250.0,
        ch_names: Sequence[str] = (),
        epochs: int = 10,
        lr: float = 1e-4,
        batch_size: int = 64,
        freeze_encoder: bool = False,
        random_state: int = 0,
        checkpoint_dir: str | None = None,
        normalize: str | None = None,
    ) -> None:
        self.model = model
        self.sfreq = sfreq
        self.ch_names = ch_names
        self.normalize = normalize
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir

    def _windows(
        self, X: Any, groups: Any, features: tuple[np.ndarray, np.ndarray, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's input of each window of ``X``, and each window's epoch (``features``:
        already computed)."""
        recordings = _epoch_recordings(X, self.sfreq, self.ch_names)
        # The windows depend on the model's input contract only, not on its weights.
        x, present, windows = features or self.base_.features(
            recordings, None if groups is None else list(groups)
        )
        return x, present, _epoch_index(windows, len(recordings))

    def fit(self, X: Any, y: Any, groups: Any = None) -> MMMClassifierEstimator:
        """Fine-tune on the epochs ``X`` with labels ``y``."""
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise UserInputError(f"y holds {len(self.classes_)} class; need 2 or more.")
        base = load_model(self.model, checkpoint_dir=self.checkpoint_dir)
        recordings = _epoch_recordings(X, self.sfreq, self.ch_names)
        self.base_, features = _standardised(base, self.normalize, recordings, y, groups)
        x, present, epochs = self._windows(X, groups, features)
        target = np.searchsorted(self.classes_, y)[epochs]
        rng = np.random.default_rng(self.random_state)
        x_t, p_t, y_t = torch.from_numpy(x), torch.from_numpy(present), torch.from_numpy(target)
        # The head's initial weights, dropout and absent-node noise from random_state, without
        # touching the caller's generator.
        with noise_seed(self.random_state):
            network = MMMClassifier(
                self.base_.encoder, len(self.classes_), freeze_encoder=self.freeze_encoder,
                label_names=[str(c) for c in self.classes_],
            )  # fmt: skip
            optimiser = torch.optim.AdamW(
                [p for p in network.parameters() if p.requires_grad], lr=self.lr
            )
            network.train()
            for _ in range(self.epochs):
                n_batches = max(1, len(x) // self.batch_size)
                for batch in np.array_split(rng.permutation(len(x)), n_batches):
                    loss = torch.nn.functional.cross_entropy(
                        network(x_t[batch], p_t[batch]), y_t[batch]
                    )
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
        self.network_ = network.eval()
        return self

    def predict_proba(self, X: Any, groups: Any = None) -> np.ndarray:
        """Class probabilities per epoch, (n_epochs, n_classes), columns in ``classes_``."""
        check_is_fitted(self, "network_")
        x, present, epochs = self._windows(X, groups)
        logits = run_windows(self.network_, x, present, seed=self.random_state)
        proba = torch.softmax(torch.from_numpy(logits), -1).numpy()
        return _mean_per_epoch(proba, epochs)

    def predict(self, X: Any, groups: Any = None) -> np.ndarray:
        """The most probable class of each epoch."""
        return self.classes_[self.predict_proba(X, groups).argmax(1)]
