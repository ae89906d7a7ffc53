"""Standardisation of DE features: per group, per band or per node and band."""

import numpy as np
import pytest

from mmm_eeg.errors import UserInputError
from mmm_eeg.normalization import NORMALIZATIONS, Normalizer, node_moments


def _windows(seed=0, n=200, nodes=6, bands=5):
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 3, (nodes, bands))
    scales = rng.uniform(0.5, 2.0, (nodes, bands))
    x = offsets + scales * rng.normal(size=(n, nodes, bands))
    present = np.ones((n, nodes), dtype=bool)
    present[:, -1] = False  # one node this recording lacks
    return x, present


def test_names_round_trip_and_unknown_names_are_refused():
    for name in NORMALIZATIONS:
        assert str(Normalizer.parse(name)) == name
    assert Normalizer.parse("subject-node") == Normalizer("subject", "node")
    with pytest.raises(UserInputError, match="subject-node"):
        Normalizer.parse("per-subject")
    with pytest.raises(
        UserInputError, match=r"'per' parameter: 'channel'\. Allowed values: 'band', 'node'"
    ):
        Normalizer("subject", "channel")  # type: ignore[arg-type]


def test_per_node_standardises_every_present_node_and_band():
    x, present = _windows()
    out = Normalizer("subject", "node").fit_transform(x, present)
    kept = out[:, :-1]
    np.testing.assert_allclose(kept.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(kept.std(0), 1, atol=1e-4)
    assert not out[:, -1].any() and out.dtype == np.float32


def test_per_band_pools_present_nodes_only():
    x, present = _windows()
    out = Normalizer("subject", "band").fit_transform(x, present)
    kept = x[:, :-1]
    expected = (kept - kept.mean((0, 1))) / kept.std((0, 1))
    np.testing.assert_allclose(out[:, :-1], expected, atol=1e-4)
    # per band keeps the differences between nodes that per node removes
    assert np.ptp(out[:, :-1].mean(0), axis=0).min() > 0.5


def test_groups_use_their_own_statistics_and_moments_add():
    a, pa = _windows(1)
    b, pb = _windows(2)
    b = b + 10.0
    x, present = np.concatenate([a, b]), np.concatenate([pa, pb])
    groups = np.repeat(["s1", "s2"], len(a))
    together = Normalizer("recording", "node").fit_transform(x, present, groups)
    np.testing.assert_allclose(
        together[: len(a)], Normalizer("recording", "node").fit_transform(a, pa)
    )
    moments = [m1 + m2 for m1, m2 in zip(node_moments(a, pa), node_moments(b, pb), strict=True)]
    np.testing.assert_allclose(moments[1], node_moments(x, present)[1])
    mean, std = Normalizer("subject", "node").statistics(*moments)
    np.testing.assert_allclose(mean[:-1], x[:, :-1].mean(0))
    np.testing.assert_allclose(std[:-1], x[:, :-1].std(0))
    assert (mean[-1] == 0).all() and (std[-1] == 1).all()  # no data: left as is


def test_none_only_zeroes_absent_nodes_and_shapes_are_checked():
    x, present = _windows()
    out = Normalizer("none").fit_transform(x, present)
    np.testing.assert_allclose(out[:, :-1], x[:, :-1].astype(np.float32))
    with pytest.raises(ValueError, match="present"):
        Normalizer().fit_transform(x, present[:, :3])
    with pytest.raises(ValueError, match="groups"):
        Normalizer().fit_transform(x, present, np.zeros(3))


def test_fitted_statistics_come_from_training_windows_only_and_travel_in_the_spec():
    """Fitted on one set of windows, the statistics standardise others without looking at
    them (a new window alone or among many reads the same), and a FeatureSpec carries them
    through its JSON form."""
    from mmm_eeg.spec import FeatureSpec

    x, present = _windows(0, nodes=62)
    normalizer = Normalizer.fit(x[:150], present[:150])
    train = normalizer.fit_transform(x[:150], present[:150])
    np.testing.assert_allclose(train[:, :-1].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train[:, :-1].std(0), 1.0, atol=1e-4)
    assert not train[:, -1].any()  # absent: 0, and its std is 1 (no data)
    new = normalizer.fit_transform(x[150:], present[150:])
    np.testing.assert_array_equal(normalizer.fit_transform(x[150:151], present[150:151]), new[:1])
    own = Normalizer.fit(x[150:], present[150:]).fit_transform(x[150:], present[150:])
    assert np.abs(new - own).max() > 0.05  # not re-centred on the new windows themselves
    spec = FeatureSpec.of(__import__("mmm_eeg").UnifiedTopology.default(),
                          FeatureSpec().preprocessing, normalizer)  # fmt: skip
    assert spec.normalize == "fitted" and str(normalizer) == "fitted"
    again = FeatureSpec.from_dict(spec.to_dict())
    np.testing.assert_array_equal(again.normalizer.fit_transform(x, present),
                                  normalizer.fit_transform(x, present))  # fmt: skip
    with pytest.raises(ValueError, match="fitted on training windows"):
        Normalizer.parse("fitted").fit_transform(x, present)
    with pytest.raises(UserInputError, match="statistics belong to normalize='fitted'"):
        FeatureSpec(normalize="subject", statistics=spec.statistics)


def test_per_group_modes_are_refused_when_each_group_has_one_label():
    from mmm_eeg.normalization import check_label_varies

    labels = np.array([0, 0, 1, 1, 0, 0])
    subjects = np.array(["a", "a", "b", "b", "c", "c"])  # a trait: one label per subject
    recordings = np.array([1, 2, 3, 4, 5, 6])
    for mode in ("subject", "subject-node"):
        with pytest.raises(UserInputError, match="fitted"):
            check_label_varies(mode, labels, {"subject": subjects})
    for mode in ("fitted", "none"):
        check_label_varies(mode, labels, {"subject": subjects, "recording": recordings})
    state = np.array(["a", "a", "a", "b", "b", "b"])  # labels vary within subjects: fine
    check_label_varies("subject", np.array([0, 1, 0, 1, 0, 1]), {"subject": state})
    with pytest.raises(UserInputError, match="Every recording here carries a single label"):
        check_label_varies("recording", labels, {"recording": recordings})
