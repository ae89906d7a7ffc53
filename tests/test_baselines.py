"""Classical decoders: filter-bank covariances, re-centred tangent space, the grouped probe."""

import numpy as np
import pytest
from pyriemann.utils.distance import distance_riemann
from pyriemann.utils.mean import mean_riemann

from mmm_eeg.baselines import band_covariances, logistic_probe, recentred_tangent_space

SFREQ = 128.0


def _subject(rng, mixing, alpha_gain, n_windows=40):
    """Sources with an alpha (10 Hz) rhythm on source 0 whose power is the class effect."""
    t = np.arange(int(n_windows * SFREQ)) / SFREQ
    sources = rng.normal(size=(4, len(t)))
    sources[0] += alpha_gain * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6))
    return mixing @ sources


def test_band_covariances_are_spd_and_see_the_band():
    rng = np.random.default_rng(0)
    data = _subject(rng, np.eye(4), 3.0)
    starts = np.arange(0, data.shape[1] - 128, 128)
    covs = band_covariances(data, SFREQ, starts, 128, [(4.0, 8.0), (8.0, 14.0)])
    assert covs.shape == (len(starts), 2, 4, 4)
    assert (np.linalg.eigvalsh(covs) > 0).all()
    # the 10 Hz rhythm is in the alpha band's covariance, on its own channel
    assert covs[:, 1, 0, 0].mean() > 3 * covs[:, 0, 0, 0].mean()


def test_recentring_puts_every_subject_at_the_identity():
    rng = np.random.default_rng(1)
    covs, groups = [], []
    for s in range(3):
        mixing = np.eye(4) + rng.normal(0, 0.5, (4, 4))  # each subject its own head
        data = _subject(rng, mixing, 2.0)
        starts = np.arange(0, data.shape[1] - 128, 128)
        covs.append(band_covariances(data, SFREQ, starts, 128, [(8.0, 14.0)]))
        groups += [s] * len(starts)
    covs, groups = np.concatenate(covs), np.array(groups)
    before = [mean_riemann(covs[groups == s, 0]) for s in range(3)]
    assert distance_riemann(before[0], before[1]) > 0.5
    vectors = recentred_tangent_space(covs, groups)
    assert vectors.shape == (len(covs), 10)  # 4 x 5 / 2 upper-triangle entries
    for s in range(3):  # the subject's mean maps to the origin of the tangent space
        assert np.abs(vectors[groups == s].mean(0)).max() < 0.05
        assert np.abs(vectors[groups == s]).max() > 0.1


def test_probe_learns_across_groups_and_needs_two_groups():
    rng = np.random.default_rng(2)
    n = 240
    y = rng.integers(0, 2, n)
    groups = np.repeat(np.arange(4), n // 4)
    features = rng.normal(size=(n, 20)) + 1.5 * y[:, None] * (np.arange(20) < 3)
    model = logistic_probe(features[groups < 3], y[groups < 3], groups[groups < 3])
    assert (model.predict(features[groups == 3]) == y[groups == 3]).mean() > 0.85
    assert model.best_params_["logisticregression__C"] in (1e-3, 1e-2, 1e-1, 1.0)
    with pytest.raises(ValueError, match="2 groups"):
        logistic_probe(features, y, np.zeros(n))
