"""Classical decoders the models are compared with (scikit-learn and pyriemann).

- DE + logistic regression: the DE features on the topology, flattened over the present
  nodes, logistic regression.
- Riemannian tangent space (as MOABB's pipelines and pyriemann's examples): per window and
  frequency band, the spatial covariance of the band-passed signals (OAS shrinkage); each
  subject's covariances re-centred at the identity (their Riemannian mean whitened away, the
  standard cross-subject transfer step); projected to the tangent space; logistic regression.

Both end in :func:`logistic_probe`, a logistic regression whose regularisation is chosen by
cross-validation over groups (subjects) of the training side only, the same probe that reads a
frozen MMM encoder's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, sosfiltfilt

REGULARISATION = (1e-3, 1e-2, 1e-1, 1.0)  # C of the logistic regression, chosen by inner CV


def logistic_search(seed: int = 0, n_splits: int = 4, balanced: bool = False):
    """Standardise, then logistic regression with C chosen by grouped inner cross-validation.

    Unfitted: ``fit(features, targets, groups=groups)``; inner folds never split a group, so C
    is chosen on data from groups the candidate model did not see.

    Parameters
    ----------
    seed : int
        Seed of the solver.
    n_splits : int
        Inner folds (at most the number of groups fitted on).
    balanced : bool
        Weight classes by inverse frequency: for training sets unbalanced by construction (a
        trait task left one subject out: the held-out subject's class is under-represented,
        which biases an unweighted model against it, below chance).

    Returns
    -------
    sklearn.model_selection.GridSearchCV
        Refits on all of the data with the chosen C.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    weights = "balanced" if balanced else None
    pipeline = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed, class_weight=weights)
    )
    return GridSearchCV(
        pipeline,
        {"logisticregression__C": list(REGULARISATION)},
        cv=GroupKFold(n_splits=n_splits),
        scoring="balanced_accuracy",
        n_jobs=-1,  # the candidate fits run in parallel on every core
    )


def logistic_probe(
    features: np.ndarray,
    targets: np.ndarray,
    groups: np.ndarray,
    seed: int = 0,
    balanced: bool = False,
):
    """:func:`logistic_search` fitted on ``features`` (n_windows, n_features).

    Parameters
    ----------
    features : ndarray, shape (n_windows, n_features)
        Training features.
    targets : ndarray, shape (n_windows,)
        Class index per window.
    groups : ndarray, shape (n_windows,)
        Group per window (subject, or time block within one subject).
    seed : int
        Seed of the solver.
    balanced : bool
        Class weights by inverse frequency (see :func:`logistic_search`).

    Returns
    -------
    sklearn.model_selection.GridSearchCV
        Refitted on all of ``features`` with the chosen C.
    """
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("logistic_probe needs at least 2 groups for its inner cross-validation.")
    search = logistic_search(seed, min(4, n_groups), balanced)
    return search.fit(features, targets, groups=groups)


def band_covariances(
    data: np.ndarray,
    sfreq: float,
    starts: np.ndarray,
    n_samples: int,
    bands: Sequence[tuple[float, float]],
) -> np.ndarray:
    """Spatial covariances of band-passed windows, (n_windows, n_bands, n_channels, n_channels).

    Each band is filtered over the whole recording (4th-order Butterworth, zero phase) before
    windowing, so that windows carry no filter edge; OAS shrinkage keeps 1 s covariances well
    conditioned.
    """
    from pyriemann.estimation import Covariances

    out = np.empty((len(starts), len(bands), data.shape[0], data.shape[0]))
    for b, band in enumerate(bands):
        windows = band_passed_windows(data, sfreq, starts, n_samples, band)
        out[:, b] = Covariances("oas").fit_transform(windows)
    return out


def band_passed_windows(
    data: np.ndarray,
    sfreq: float,
    starts: np.ndarray,
    n_samples: int,
    band: tuple[float, float],
) -> np.ndarray:
    """Windows (n_windows, n_channels, n_samples) of ``data`` band-passed over the whole
    recording first (4th-order Butterworth, zero phase; the high edge kept below Nyquist)."""
    low, high = band[0], min(band[1], 0.95 * sfreq / 2)
    sos = butter(4, (low, high), btype="bandpass", fs=sfreq, output="sos")
    filtered = sosfiltfilt(sos, data, axis=-1)
    return np.stack([filtered[:, s : s + n_samples] for s in starts])


def xdawn_tangent_space(n_filters: int = 2):
    """pyriemann's ERP pipeline: xDAWN-augmented covariances (supervised: fit on training
    epochs with their labels), then tangent-space vectors (a scikit-learn transformer)."""
    from pyriemann.estimation import XdawnCovariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.pipeline import make_pipeline

    return make_pipeline(XdawnCovariances(n_filters, estimator="oas"), TangentSpace("riemann"))


def csp_lda(n_components: int = 4):
    """The motor-imagery pipeline: MNE's common spatial patterns (log-variance of
    ``n_components`` filters, Ledoit-Wolf regularised covariances), then linear discriminant
    analysis (a scikit-learn classifier, fitted on (n_epochs, n_channels, n_samples) windows)."""
    from mne.decoding import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        CSP(n_components, reg="ledoit_wolf", log=True), LinearDiscriminantAnalysis()
    )


def recentred_tangent_space(covariances: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Tangent-space vectors of covariances re-centred per group, concatenated over bands.

    Parameters
    ----------
    covariances : ndarray, shape (n_windows, n_bands, n_channels, n_channels)
        From :func:`band_covariances`.
    groups : ndarray, shape (n_windows,)
        Subject of each window: each subject's Riemannian mean is whitened to the identity
        (unsupervised: it uses no label), then vectors are taken at the identity.
    """
    from pyriemann.geometry.tangentspace import tangent_space
    from pyriemann.utils.base import invsqrtm
    from pyriemann.utils.mean import mean_riemann

    _, n_bands, c, _ = covariances.shape
    centred = np.empty_like(covariances)
    for g in np.unique(groups):
        mine = groups == g
        for b in range(n_bands):
            whitening = invsqrtm(mean_riemann(covariances[mine, b]))
            centred[mine, b] = whitening @ covariances[mine, b] @ whitening
    identity = np.eye(c)  # every group is centred there
    return np.concatenate(
        [tangent_space(centred[:, b], identity, metric="riemann") for b in range(n_bands)], axis=1
    )
