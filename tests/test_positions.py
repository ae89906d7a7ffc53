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


def _by_hand(*coordinates):  # width 4 per coordinate: [sin(c), sin(c/100), cos(c), cos(c/100)]
    return np.concatenate(
        [[np.sin(c), np.sin(c / 100), np.cos(c), np.cos(c / 100)] for c in coordinates]
    )


def test_1d_encoding_by_hand(topo):
    enc = position_encoding(topo, 4, "1d")
    np.testing.assert_allclose(enc[topo.index("CZ")], _by_hand(topo.index("CZ")), atol=1e-12)
    # region 0 = FP1 FPZ FP2 AF3 AF4, the first five nodes: mean index 2
    np.testing.assert_allclose(enc[62], _by_hand(2.0), atol=1e-12)


def test_3d_encoding_by_hand(topo, reference_table):
    import pandas as pd

    table = pd.read_csv(reference_table)
    ranks = {  # dense ranks of the reference table's x, y, z, computed here with pandas
        axis: table[f"{axis}_mm"].rank(method="dense").astype(int) - 1 for axis in "xyz"
    }
    cz = int(np.flatnonzero(table["node"].str.upper() == "CZ")[0])
    enc = position_encoding(topo, 12, "3d")
    expected = _by_hand(*(ranks[a][cz] for a in "xyz"))
    np.testing.assert_allclose(enc[topo.index("CZ")], expected, atol=1e-12)


def test_spherical_encoding_by_hand(topo):
    import mne

    builtin = mne.channels.get_builtin_montages()
    template = next(m for m in ("colin27_1005", "standard_1005") if m in builtin)
    montage = mne.channels.make_standard_montage(template)
    info = mne.create_info(["C4", "CZ"], 100.0, "eeg")
    info.set_montage(montage, match_case=False, verbose="error")
    for name, position in zip(("C4", "CZ"), info.get_montage().get_positions()["ch_pos"].values(),
                              strict=True):  # fmt: skip
        x, y, z = position
        azimuth = np.degrees(np.arctan2(y, x))
        elevation = np.degrees(np.arcsin(z / np.linalg.norm(position)))  # not the code's formula
        enc = position_encoding(topo, 4, "spherical")[topo.index(name)]
        expected = [np.sin(azimuth), np.cos(azimuth), np.sin(elevation), np.cos(elevation)]
        np.testing.assert_allclose(enc, expected, atol=1e-9)


def test_spherical_separates_left_and_right(topo):
    enc = position_encoding(topo, 16, "spherical")
    assert not np.allclose(enc[topo.index("C3")], enc[topo.index("C4")])


def test_unknown_kind(topo):
    with pytest.raises(ValueError, match="'pos_encoding' parameter: 'polar'"):
        position_encoding(topo, 8, "polar")
