"""scikit-learn estimators: the applicable estimator checks, and cross-validation on eegmat."""

import mne
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as checks

from mmm_eeg import UnifiedTopology, UserInputError
from mmm_eeg.estimators import DifferentialEntropy, MMMClassifierEstimator, MMMEmbedder
from mmm_eeg.features import DEFAULT_BANDS, differential_entropy

NAMES = ["Fz", "Cz", "Pz", "ECG"]


@pytest.mark.parametrize(
    "estimator",
    [
        DifferentialEntropy(sfreq=128.0, ch_names=NAMES),
        MMMEmbedder("mmm_small", 128.0, NAMES),
        MMMClassifierEstimator("mmm_small", 128.0, NAMES),
    ],
    ids=["DifferentialEntropy", "MMMEmbedder", "MMMClassifierEstimator"],
)
@pytest.mark.parametrize(
    "check",
    [
        checks.check_no_attributes_set_in_init,
        checks.check_get_params_invariance,
        checks.check_set_params,
        checks.check_estimator_cloneable,
        checks.check_do_not_raise_errors_in_init_or_set_params,
    ],
    ids=lambda c: c.__name__,
)
def test_applicable_estimator_checks(estimator, check):
    check(type(estimator).__name__, estimator)


def test_differential_entropy_places_channels_on_their_nodes():
    rng = np.random.default_rng(0)
    X = rng.normal(scale=1e-5, size=(3, 4, 256))
    features = DifferentialEntropy(sfreq=128.0, ch_names=NAMES).fit_transform(X)
    topology = UnifiedTopology.default()
    assert features.shape == (3, topology.n_nodes * len(DEFAULT_BANDS))
    nodes = features.reshape(3, topology.n_nodes, len(DEFAULT_BANDS))
    direct = differential_entropy(X[1], 128.0, window=2.0)[0]  # (channels, bands)
    for channel, node in (("Fz", "FZ"), ("Cz", "CZ"), ("Pz", "PZ")):
        np.testing.assert_allclose(nodes[1, topology.index(node)], direct[NAMES.index(channel)])
    fed = {topology.index(n) for n in ("FZ", "CZ", "PZ")}
    assert not nodes[:, [i for i in range(topology.n_nodes) if i not in fed]].any()  # ECG: none
    with pytest.raises(UserInputError, match=r"\(n_epochs, 4 channels, n_times\)"):
        DifferentialEntropy(sfreq=128.0, ch_names=NAMES).fit(X[:, :3])
    assert clone(DifferentialEntropy(sfreq=100.0, ch_names=NAMES)).get_params()["sfreq"] == 100.0


@pytest.fixture(scope="module")
def eegmat_epochs(eeg_data):
    """4 s epochs of eegmat subjects 00-11: rest (label 0) and arithmetic (1), by subject."""
    X, y, groups = [], [], []
    for subject in range(12):
        for run, label in ((1, 0), (2, 1)):
            raw = mne.io.read_raw_edf(
                eeg_data / "eegmat" / f"Subject{subject:02d}_{run}.edf",
                preload=True,
                verbose="error",
            )
            data = mne.make_fixed_length_epochs(raw, 4.0, verbose="error").get_data(copy=True)
            X.append(data)
            y += [label] * len(data)
            groups += [subject] * len(data)
    return np.concatenate(X), np.array(y), np.array(groups), raw.ch_names, raw.info["sfreq"]


def test_cross_validation_on_eegmat(eegmat_epochs, checkpoint_path):
    X, y, groups, names, sfreq = eegmat_epochs
    cv = LeaveOneGroupOut()
    de = make_pipeline(
        DifferentialEntropy(sfreq, names), StandardScaler(), LogisticRegression(max_iter=3000)
    )
    de_scores = cross_val_score(de, X, y, groups=groups, cv=cv, scoring="balanced_accuracy")
    with sklearn.config_context(enable_metadata_routing=True):
        embedder = MMMEmbedder(
            "mmm_base_tuh", sfreq, names, checkpoint_dir=str(checkpoint_path.parent)
        )
        embedder.set_fit_request(groups=True).set_transform_request(groups=True)
        mmm = make_pipeline(embedder, StandardScaler(), LogisticRegression(max_iter=3000))
        mmm_scores = cross_val_score(
            mmm, X, y, cv=cv, scoring="balanced_accuracy", params={"groups": groups}
        )
        # The same features without the subjects: every call is one group.
        blind = clone(embedder).set_fit_request(groups=False).set_transform_request(groups=False)
        pooled = make_pipeline(blind, StandardScaler(), LogisticRegression(max_iter=3000))
        pooled_scores = cross_val_score(
            pooled, X, y, cv=cv, scoring="balanced_accuracy", params={"groups": groups}
        )
    print(
        f"DE+LR {de_scores.mean():.3f} ± {de_scores.std():.3f}; MMMEmbedder(mmm_base_tuh)+LR, "
        f"per-subject standardisation {mmm_scores.mean():.3f} ± {mmm_scores.std():.3f}, "
        f"one group per call {pooled_scores.mean():.3f} ± {pooled_scores.std():.3f}"
    )
    assert len(mmm_scores) == len(np.unique(groups))
    assert mmm_scores.mean() > 0.55  # per-subject standardisation, as the model was trained
    assert mmm_scores.mean() > pooled_scores.mean()


def test_classifier_estimator_fits_predicts_and_cross_validates(eegmat_epochs):
    X, y, groups, names, sfreq = eegmat_epochs
    one = groups == 0
    estimator = MMMClassifierEstimator("mmm_small", sfreq, names, epochs=60, lr=3e-3, batch_size=32)
    estimator.fit(X[one], y[one])
    proba = estimator.predict_proba(X[one])
    assert proba.shape == (one.sum(), 2) and np.allclose(proba.sum(1), 1.0)
    assert list(estimator.classes_) == [0, 1]
    from sklearn.metrics import balanced_accuracy_score

    assert balanced_accuracy_score(y[one], estimator.predict(X[one])) > 0.8  # it learns
    few = groups < 2
    with sklearn.config_context(enable_metadata_routing=True):
        routed = clone(estimator).set_params(epochs=1)
        routed.set_fit_request(groups=True).set_predict_request(groups=True)
        scores = cross_val_score(
            routed, X[few], y[few], cv=GroupKFold(2), params={"groups": groups[few]}
        )
    assert len(scores) == 2 and np.all((scores >= 0) & (scores <= 1))
