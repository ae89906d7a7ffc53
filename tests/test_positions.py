"""Sin-cos position encodings."""

import numpy as np
import pytest

from mmm_eeg import UnifiedTopology
from mmm_eeg.model.pos_embed import position_encoding, sincos_encoding


@pytest.fixture(scope="module")
def topo():
    return UnifiedTopology.default()


def test_sincos_known_values():
    # dim 4: omega = [1, 1/100]; layout [sin(c), sin(c/100), cos(c), cos(c/100)].
    out = sincos_encoding(4, np.array([0.0, 2.0]))
    np.testing.assert_allclose(out[0], [0, 0, 1, 1])
    np.testing.assert_allclose(out[1], [np.sin(2), np.sin(0.02), np.cos(2), np.cos(0.02)])


def test_2d_encoding_by_hand(topo):
    enc = position_encoding(topo, 8, "2d")
    assert enc.shape == (80, 8)

    def by_hand(x, y):  # width 8: x half then y half, each [sin(c), sin(c/100), cos(c), cos(c/100)]
        return [np.sin(x), np.sin(x / 100), np.cos(x), np.cos(x / 100),
                np.sin(y), np.sin(y / 100), np.cos(y), np.cos(y / 100)]  # fmt: skip

    # CZ ranks (16, 15) in the reference table; region 0 = FP1 FPZ FP2 AF3 AF4 with x ranks
    # 14 16 18 11 21 (mean 16) and y ranks 27 28 27 26 26 (mean 26.8).
    np.testing.assert_allclose(enc[topo.index("CZ")], by_hand(16, 15), atol=1e-12)
    np.testing.assert_allclose(enc[62], by_hand(16, 26.8), atol=1e-12)
    np.testing.assert_array_equal(enc[79], np.zeros(8))


@pytest.mark.parametrize(
    ("kind", "dim", "bad", "multiple"),
    [("1d", 6, 5, 2), ("2d", 64, 62, 4), ("3d", 66, 64, 6), ("spherical", 16, 18, 4)],
)
def test_every_kind_works_and_rejects_bad_widths(topo, kind, dim, bad, multiple):
    enc = position_encoding(topo, dim, kind)
    assert enc.shape == (80, dim) and np.all(np.isfinite(enc))
    assert not enc[79].any()
    # distinct nodes get distinct encodings (except true ties in the reference table)
    assert len(np.unique(enc[:62].round(9), axis=0)) >= 50
    with pytest.raises(ValueError, match=f"positive multiple of {multiple}; got {bad}"):
        position_encoding(topo, bad, kind)


def test_spherical_separates_left_and_right(topo):
    enc = position_encoding(topo, 16, "spherical")
    assert not np.allclose(enc[topo.index("C3")], enc[topo.index("C4")])


def test_unknown_kind(topo):
    with pytest.raises(ValueError, match="'pos_encoding' parameter: 'polar'"):
        position_encoding(topo, 8, "polar")
