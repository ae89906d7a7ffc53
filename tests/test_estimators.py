"""scikit-learn estimators: the applicable estimator checks, and cross-validation on eegmat."""

import mne
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as checks

from mmm_eeg import UnifiedTopology, UserInputError
from mmm_eeg.baselines import logistic_probe
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.corpus.labels import label_targets
from mmm_eeg.estimators import (
    DifferentialEntropy,
    GroupStandardScaler,
    MMMClassifierEstimator,
    MMMEmbedder,
    de_logistic_regression,
)
from mmm_eeg.features import DEFAULT_BANDS, differential_entropy
from mmm_eeg.io.readers import read_recording
from mmm_eeg.io.sources import discover_sources

NAMES = ["Fz", "Cz", "Pz", "ECG"]


@pytest.mark.parametrize(
    "estimator",
    [
        DifferentialEntropy(sfreq=128.0, ch_names=NAMES),
        MMMEmbedder("mmm_small", 128.0, NAMES),
        MMMClassifierEstimator("mmm_small", 128.0, NAMES),
        GroupStandardScaler(),
    ],
    ids=["DifferentialEntropy", "MMMEmbedder", "MMMClassifierEstimator", "GroupStandardScaler"],
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


def test_group_standard_scaler_uses_each_groups_own_statistics():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(5.0, 2.0, (30, 3)), rng.normal(-1.0, 0.5, (20, 3))])
    X[:, 2] = 7.0  # constant: a node no channel feeds
    groups = np.array([0] * 30 + [1] * 20)
    Z = GroupStandardScaler().fit_transform(X, groups=groups)
    for g in (0, 1):
        mine = X[groups == g]
        np.testing.assert_allclose(
            Z[groups == g, :2],
            (mine[:, :2] - mine[:, :2].mean(0)) / mine[:, :2].std(0),
            rtol=1e-5,
            atol=1e-6,
        )
    assert np.all(Z[:, 2] == 0.0)
    pooled = GroupStandardScaler().fit(X).transform(X)  # no groups: one group
    np.testing.assert_allclose(
        pooled[:, 0], (X[:, 0] - X[:, 0].mean()) / X[:, 0].std(), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(UserInputError, match="groups has 3 entries for 50 samples"):
        GroupStandardScaler().fit(X).transform(X, groups=[0, 1, 2])
    with pytest.raises(UserInputError, match="fitted on 3"):
        GroupStandardScaler().fit(X).transform(X[:, :2])
    with pytest.raises(UserInputError, match="enable_metadata_routing"):
        de_logistic_regression(128.0, NAMES)


def test_fitted_scaling_for_traits(eegmat_epochs):
    """A trait split (each subject one label): per-subject scaling is refused, with the way
    out named; fitted scaling learns on the training epochs and reuses it (a StandardScaler's
    numbers), and the MMM estimators fit the model's standardisation the same way."""
    from sklearn.preprocessing import StandardScaler as Reference

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4)) * [1, 2, 3, 4] + [5, 6, 7, 8]
    groups, y = np.repeat([0, 1, 2], 10), np.repeat([0, 1, 0], 10)
    with pytest.raises(UserInputError, match="fitted"):
        GroupStandardScaler().fit(X, y, groups=groups)
    scaler = GroupStandardScaler(by="fitted").fit(X[:20], y[:20], groups=groups[:20])
    np.testing.assert_allclose(
        scaler.transform(X[20:], groups=groups[20:]),
        Reference().fit(X[:20]).transform(X[20:]), rtol=1e-5, atol=1e-5,
    )  # fmt: skip
    X, y, subjects, names, sfreq = eegmat_epochs
    trait = ((subjects % 2 == 0) == (y == 0)) & (subjects < 4)  # even: rest, odd: arithmetic
    with pytest.raises(UserInputError, match="single label"):
        MMMEmbedder("mmm_small", sfreq, names).fit(X[trait], y[trait], groups=subjects[trait])
    embedder = MMMEmbedder("mmm_small", sfreq, names, normalize="fitted")
    embedder.fit(X[trait], y[trait], groups=subjects[trait])
    spec = embedder.model_.spec
    assert spec.normalize == "fitted" and np.shape(spec.statistics["mean"]) == (62, 5)
    # fitted statistics do not look at the data transformed: one epoch alone reads the same
    alone = embedder.transform(X[trait][:1], groups=subjects[trait][:1])
    np.testing.assert_allclose(alone, embedder.transform(X[trait], subjects[trait])[:1], atol=1e-5)
    # the training windows fit computes once are those the fitted model reads
    from mmm_eeg.estimators import _epoch_recordings, _standardised
    from mmm_eeg.inference import load_model

    recordings = _epoch_recordings(X[trait], sfreq, names)
    model, (x, present, windows) = _standardised(
        load_model("mmm_small"), "fitted", recordings, y[trait], subjects[trait]
    )
    again, present_again, windows_again = model.features(recordings)
    np.testing.assert_array_equal(present, present_again)
    assert list(windows["epoch"]) == list(windows_again["epoch"])
    np.testing.assert_allclose(x, again, rtol=1e-6, atol=1e-6)


def test_benchmark_baseline_pipeline_reads_what_the_corpus_holds(eeg_data, tmp_path):
    """de_logistic_regression on windows cut from the files equals the transfer benchmark's
    route (DE from the corpus, standardised per subject, node and band; logistic_probe)."""
    files = {f"Subject{s}_{r}.edf" for s in (24, 25, 26, 27, 28) for r in (1, 2)}
    sources, _ = discover_sources([eeg_data / "eegmat" / "manifest.csv"])
    build_corpus([s for s in sources if s.path.name in files], tmp_path / "corpus")
    corpus = Corpus(tmp_path / "corpus")
    rows = np.arange(len(corpus))
    expected, present = corpus.read(rows, "subject-node")
    paths = dict(zip(corpus.recordings["recording"], corpus.recordings["path"], strict=True))
    X = []
    for name, part in corpus.index.groupby("recording", sort=False):
        assert (part.index == len(X) + np.arange(len(part))).all()  # rows in file order
        recording = read_recording(paths[name])
        mapping = corpus.topology.map_channels(recording.ch_names)
        n = round(corpus.config.window * recording.sfreq)
        starts = np.round(part["start_s"].to_numpy() * recording.sfreq).astype(int)
        data = recording.data[mapping.source[mapping.present]]
        X += [data[:, s : s + n] for s in starts]
    X = np.stack(X)
    nodes = [corpus.topology.nodes[i] for i in np.flatnonzero(mapping.present)]
    subjects = corpus.index["subject"].astype(str).to_numpy()
    y, _ = label_targets(corpus.index, rows)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = de_logistic_regression(recording.sfreq, nodes)
        features = pipe[:2].fit_transform(X, groups=subjects).reshape(expected.shape)
        np.testing.assert_allclose(features[present], expected[present], atol=2e-4)
        scores = cross_val_score(
            pipe, X, y, cv=LeaveOneGroupOut(), scoring="balanced_accuracy",
            params={"groups": subjects},
        )  # fmt: skip
    flat = expected.reshape(len(rows), -1)
    for subject, score in zip(np.unique(subjects), scores, strict=True):
        test = subjects == subject
        probe = logistic_probe(flat[~test], y[~test], subjects[~test])
        assert score == balanced_accuracy_score(y[test], probe.predict(flat[test]))  # the same
    assert scores.mean() > 0.6
