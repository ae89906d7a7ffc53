"""Property-based tests (hypothesis): name mapping, differential entropy, masking."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmm_eeg import ChannelMappingError, UnifiedTopology
from mmm_eeg.datasets import EXAMPLE_MONTAGES
from mmm_eeg.features import differential_entropy
from mmm_eeg.model import random_mask, regional_mask

TOPO = UnifiedTopology.default()
CAP64 = [n.rstrip(".") for n in EXAMPLE_MONTAGES["research 10-10"]]
CLINICAL = "Fp1 Fp2 F3 F4 F7 F8 T3 T4 C3 C4 T5 T6 P3 P4 O1 O2 Fz Cz Pz".split()


def decorate(draw, name: str) -> str:
    case = draw(st.sampled_from([str.upper, str.lower, str.title, lambda s: s]))
    prefix = draw(st.sampled_from(["", "EEG ", "POL "]))
    suffix = draw(st.sampled_from(["", "-REF", "-LE", "-AVG", "-A2", "..", ".", " "]))
    return f"{prefix}{case(name)}{suffix}"


@st.composite
def decorated_montage(draw):
    source = draw(st.sampled_from([CAP64, CLINICAL]))
    names = draw(st.lists(st.sampled_from(source), min_size=1, max_size=len(source), unique=True))
    return names, [decorate(draw, n) for n in names]


@settings(max_examples=60, deadline=None)
@given(decorated_montage())
def test_decorations_never_change_which_electrodes_map(montage):
    clean, decorated = montage
    a = TOPO.map_channels(clean, on_unknown="drop")
    b = TOPO.map_channels(decorated, on_unknown="drop")
    assert [c.node for c in a.channels] == [c.node for c in b.channels]
    assert [c.method for c in a.channels] == [c.method for c in b.channels]
    np.testing.assert_array_equal(a.present, b.present)


junk = st.text(alphabet="QWXYZJK", min_size=2, max_size=6).map(lambda s: "ZQ" + s)


@settings(max_examples=40, deadline=None)
@given(st.lists(junk, min_size=1, max_size=5, unique=True))
def test_junk_never_maps_silently(names):
    with pytest.raises(ChannelMappingError, match="Unknown channel names"):
        TOPO.map_channels([*names, "Cz"])
    mapping = TOPO.map_channels([*names, "Cz"], on_unknown="drop")
    assert [c.reason for c in mapping.channels[:-1]] == ["unknown name with no position"] * len(
        names
    )
    assert mapping.n_present == 1


@settings(max_examples=30, deadline=None)
@given(
    channels=st.integers(1, 4),
    seconds=st.integers(1, 5),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
    method=st.sampled_from(["fft", "filter"]),
)
def test_de_shape_finiteness_and_scaling(channels, seconds, scale, seed, method):
    x = np.random.default_rng(seed).normal(size=(channels, 200 * seconds))
    de = differential_entropy(x, 200.0, method=method)
    assert de.shape == (seconds, channels, 5) and np.isfinite(de).all()
    np.testing.assert_allclose(differential_entropy(scale * x, 200.0, method=method),
                               de + np.log(scale), atol=1e-6)  # fmt: skip


presence = st.lists(st.booleans(), min_size=62, max_size=62).filter(lambda p: any(p))


@settings(max_examples=60, deadline=None)
@given(st.lists(presence, min_size=1, max_size=6), st.floats(0.05, 0.95), st.integers(0, 999))
def test_masking_invariants(rows, ratio, seed):
    present = torch.tensor(rows)
    masked = random_mask(present, ratio, torch.Generator().manual_seed(seed))
    assert not (masked & ~present).any()
    n = present.sum(1)
    expected = torch.where(
        n >= 2, torch.round(ratio * n.double()).long().clamp(min=1).minimum(n - 1), 0
    )
    assert torch.equal(masked.sum(1), expected)
    region_of = torch.tensor(TOPO.region_of)
    regional = regional_mask(present, region_of, ratio, torch.Generator().manual_seed(seed))
    assert not (regional & ~present).any()
    for b in range(len(rows)):
        regions_present = set(region_of[present[b]].tolist())
        if len(regions_present) < 2:
            continue  # single region: documented fallback to random masking
        for r in set(region_of[regional[b]].tolist()):  # masked regions are masked whole
            assert regional[b][(region_of == r) & present[b]].all()
        assert set(region_of[regional[b]].tolist()) != regions_present  # something stays visible
