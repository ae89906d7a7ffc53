"""The unified topology: default layout, validation, attention mask and channel mapping."""

import filecmp
from importlib import resources

import numpy as np
import pytest

from mmm_eeg import ChannelMappingError, UnifiedTopology
from mmm_eeg.io import read_channel_info
from mmm_eeg.montage import template_position

# The node order and regions exactly as ../shared/DESIGN.md gives them (the checkpoint's contract).
DESIGN_LAYOUT = (
    "FP1 FPZ FP2 AF3 AF4 | F7 F5 F3 | F1 FZ F2 FC1 FCZ FC2 | F4 F6 F8 | FT7 FC5 FC3 | "
    "FC4 FC6 FT8 | T7 C5 C3 | C1 CZ C2 | C4 C6 T8 | TP7 CP5 CP3 | CP1 CPZ CP2 P1 PZ P2 | "
    "CP4 CP6 TP8 | P7 P5 P3 | P4 P6 P8 | PO7 PO5 CB1 | PO3 POZ PO4 O1 OZ O2 | PO6 PO8 CB2"
)
DESIGN_REGIONS = [group.split() for group in DESIGN_LAYOUT.split("|")]


@pytest.fixture(scope="module")
def topo():
    return UnifiedTopology.default()


def test_default_layout_is_the_checkpoint_contract(topo):
    assert topo.nodes == tuple(n for group in DESIGN_REGIONS for n in group)
    assert [[topo.nodes[i] for i in r] for r in topo.regions] == DESIGN_REGIONS
    assert (topo.n_nodes, topo.n_regions, topo.n_tokens) == (62, 17, 80)


def test_shipped_coordinate_table_is_the_reference_table(reference_table):
    shipped = resources.files("mmm_eeg") / "data" / "seed62_coordinates.csv"
    assert filecmp.cmp(str(shipped), reference_table, shallow=False)


def test_positions_are_head_frame_metres(topo):
    radius = np.linalg.norm(topo.positions, axis=1)
    assert np.all((radius > 0.06) & (radius < 0.16))
    cz, fpz, oz = (topo.positions[topo.index(n)] for n in ("CZ", "FPZ", "OZ"))
    assert cz[2] > fpz[2] and cz[2] > oz[2]  # vertex on top
    assert fpz[1] > 0 > oz[1]  # +y towards the nose
    t7, t8 = topo.positions[topo.index("T7")], topo.positions[topo.index("T8")]
    assert t7[0] < 0 < t8[0]  # +x towards the right ear


def test_cb1_cb2_sit_at_i1_i2_below_o1_o2(topo):
    for cb, site, occipital in (("CB1", "I1", "O1"), ("CB2", "I2", "O2")):
        position = topo.positions[topo.index(cb)]
        np.testing.assert_array_equal(position, template_position(site))
        assert position[2] < topo.positions[topo.index(occipital)][2] - 0.02


def test_rank_coordinates_come_from_the_reference_table(topo):
    # Ranked by hand from seed62_coordinates.csv: distinct x values -87 ... -27 (14th), -25, 0.
    assert tuple(topo.rank_coordinates[topo.index("FP1"), :2]) == (14, 27)
    assert tuple(topo.rank_coordinates[topo.index("CZ"), :2]) == (16, 15)
    assert tuple(topo.rank_coordinates[topo.index("T7"), :2]) == (0, 15)
    assert topo.rank_coordinates[:, 0].max() == 32  # 33 distinct x values


def test_region_centroids_are_member_means(topo):
    members = [topo.index(n) for n in DESIGN_REGIONS[7]]
    np.testing.assert_allclose(topo.region_centroids[7], topo.positions[members].mean(0))


@pytest.mark.parametrize(
    ("nodes", "regions", "message"),
    [
        (["FP1", "fp1"], [["FP1"]], "unique"),
        (["FP1", "FP2"], [["FP1"], ["FP1", "FP2"]], "exactly one region"),
        (["FP1", "FP2"], [["FP1"]], "without a region"),
        (["FP1", "FP2"], [["FP1", "FP2"], []], "empty"),
        (["FP1", "FP2"], [["FP1", "FP2", "CZ"]], "not in the topology"),
        (["FP1", "XYZ"], [["FP1", "XYZ"]], "No template position"),
    ],
)
def test_custom_topologies_are_validated(nodes, regions, message):
    with pytest.raises(ValueError, match=message):
        UnifiedTopology(nodes, regions)


def test_custom_topology_with_explicit_positions():
    topo = UnifiedTopology(["A", "B"], [["A", "B"]], positions=np.eye(3)[:2] * 0.09, name="two")
    assert topo.n_tokens == 4
    with pytest.raises(ValueError, match="shape"):
        UnifiedTopology(["A", "B"], [["A", "B"]], positions=np.zeros((3, 3)))


# -- attention mask ---------------------------------------------------------------------------

SMALL = UnifiedTopology(["FP1", "FP2", "CZ", "O1", "O2"], [["FP1", "FP2"], ["CZ"], ["O1", "O2"]])
# Tokens: FP1 FP2 CZ O1 O2 | R0 R1 R2 | CLS. '#' = blocked, '.' = allowed; written out by hand.
SMALL_EXPECTED = [
    # FP1 FP2 CZ O1 O2 R0 R1 R2 CLS
    "......##.",  # FP1: all channels, own region R0, class
    "......##.",  # FP2
    ".....#.#.",  # CZ: R1 only
    ".....##..",  # O1: R2 only
    ".....##..",  # O2
    "..###....",  # R0: its channels FP1 FP2, all regions, class
    "##.##....",  # R1: CZ
    "###......",  # R2: O1 O2
    ".........",  # CLS: everything
]


def test_hierarchy_mask_cell_by_cell():
    expected = np.array([[c == "#" for c in row] for row in SMALL_EXPECTED])
    np.testing.assert_array_equal(SMALL.attention_mask(), expected)


def test_default_mask_rules(topo):
    mask = topo.attention_mask()
    n, r = topo.n_nodes, topo.n_regions
    assert not mask[:n, :n].any() and not mask[n : n + r, n : n + r].any()
    assert not mask[-1].any() and not mask[:, -1].any()
    for i in range(n):
        own = n + topo.region_of[i]
        assert not mask[i, own] and not mask[own, i]
        assert mask[i, n : n + r].sum() == r - 1 and mask[n : n + r, i].sum() == r - 1
    np.testing.assert_array_equal(mask, mask.T)


def test_present_mask_blocks_absent_keys_only():
    present = np.array([[True, False, True, True, False], [True] * 5])
    mask = SMALL.attention_mask(present)
    assert mask.shape == (2, 9, 9)
    base = SMALL.attention_mask()
    np.testing.assert_array_equal(mask[1], base)
    np.testing.assert_array_equal(mask[0][:, [1, 4]], np.ones((9, 2), bool))
    np.testing.assert_array_equal(mask[0][:, [0, 2, 3, 5, 6, 7, 8]], base[:, [0, 2, 3, 5, 6, 7, 8]])
    assert not mask.all(axis=-1).any()  # every query keeps at least the class token
    with pytest.raises(ValueError, match="batch, 5"):
        SMALL.attention_mask(np.ones(5, bool))


# -- channel mapping on the real files ----------------------------------------------------------


def test_eegmat_mapping(topo, eegmat_file):
    info = read_channel_info(eegmat_file)
    assert len(info.names) == 21
    mapping = topo.map_channels(info.names, info.positions or None, types=info.types)
    by_name = {c.name: c for c in mapping.channels}
    assert {c.method for c in mapping.channels} == {"name", "alias"}
    assert {n: by_name[n].node_name for n in ("EEG T3", "EEG T4", "EEG T5", "EEG T6")} == {
        "EEG T3": "T7", "EEG T4": "T8", "EEG T5": "P7", "EEG T6": "P8"
    }  # fmt: skip
    assert all(by_name[n].method == "alias" for n in ("EEG T3", "EEG T4", "EEG T5", "EEG T6"))
    assert by_name["EEG Fp1"].node_name == "FP1" and by_name["EEG Fp1"].method == "name"
    assert {(e.name, e.reason) for e in mapping.excluded} == {
        ("EEG A2-A1", "reference derivation A2-A1"),
        ("ECG ECG", "ECG channel"),
    }
    assert mapping.n_present == 19
    assert mapping.counts() == {
        "name": 15, "alias": 4, "position": 0, "unmapped": 0, "excluded": 2
    }  # fmt: skip


def test_eegmmidb_mapping(topo, eegmmidb_file):
    info = read_channel_info(eegmmidb_file)
    assert len(info.names) == 64 and all(n.endswith(".") for n in info.names)
    mapping = topo.map_channels(info.names, types=info.types)
    by_name = {c.name.rstrip("."): c for c in mapping.channels}
    assert mapping.counts() == {
        "name": 58, "alias": 0, "position": 1, "unmapped": 5, "excluded": 0
    }  # fmt: skip
    iz = by_name["Iz"]
    assert iz.method == "position" and iz.node_name in ("CB1", "CB2")
    assert 25 < iz.distance_mm < 35
    # Outside the layout and landing on a node a name match already feeds: unmapped, winner named.
    losers = {"Af7": "Fp1.", "Af8": "Fp2.", "Afz": "Af3.", "T9": "T7..", "T10": "T8.."}
    for name, winner in losers.items():
        assert by_name[name].node is None
        assert by_name[name].reason.endswith(f"is already fed by '{winner}'")
    absent = {topo.nodes[i] for i in np.flatnonzero(~mapping.present)}
    assert absent == {"PO5", "PO6", "CB1", "CB2"} - {iz.node_name}


def test_muse_mapping(topo, muse_file):
    info = read_channel_info(muse_file)
    assert info.names == ("TP9", "AF7", "AF8", "TP10", "Right AUX")
    mapping = topo.map_channels(info.names)
    got = {c.name: (c.node_name, c.method) for c in mapping.channels}
    assert got == {
        "TP9": ("TP7", "position"), "AF7": ("FP1", "position"),
        "AF8": ("FP2", "position"), "TP10": ("TP8", "position"),
    }  # fmt: skip
    assert max(c.distance_mm for c in mapping.channels) < 40.0
    assert [(e.name, e.reason) for e in mapping.excluded] == [
        ("Right AUX", "non-EEG channel name 'RIGHT AUX'")
    ]
    assert mapping.n_present == 4


# -- mapping rules --------------------------------------------------------------------------------


def test_name_beats_position_and_duplicates_lose(topo):
    mapping = topo.map_channels(["AF7", "Fp1", "FP1"])
    af7, fp1, dup = mapping.channels
    assert fp1.node_name == "FP1" and fp1.method == "name"
    assert af7.node is None and "already fed by 'Fp1'" in af7.reason
    assert dup.node is None and "already fed by 'Fp1'" in dup.reason
    assert mapping.source[topo.index("FP1")] == 1


def test_nearer_position_match_wins_regardless_of_order(topo):
    fp1 = topo.positions[topo.index("FP1")]
    up = np.array([0.0, 0.0, 0.001])
    positions = {"E2": fp1 + 10 * up, "E1": fp1 + 5 * up}
    mapping = topo.map_channels(["E2", "E1"], positions)
    e2, e1 = mapping.channels
    assert e1.node_name == "FP1" and e1.distance_mm == pytest.approx(5.0)
    assert e2.node is None and "already fed by 'E1'" in e2.reason


def test_tolerance_rejects_far_electrodes(topo):
    mapping = topo.map_channels(["TP9", "Cz"], tolerance_mm=30)
    tp9 = mapping.channels[0]
    assert tp9.node is None
    assert "TP7 is 38.7 mm away (tolerance 30 mm)" in tp9.reason


def test_unknown_names_raise_with_the_options(topo):
    with pytest.raises(ChannelMappingError, match=r"'Foo', 'Bar'.*on_unknown='drop'"):
        topo.map_channels(["Cz", "Foo", "Bar"])
    mapping = topo.map_channels(["Cz", "Foo"], on_unknown="drop")
    assert mapping.channels[1].node is None
    assert mapping.channels[1].reason == "unknown name with no position"


def test_nothing_mappable_is_an_error(topo):
    with pytest.raises(ChannelMappingError, match="None of the 2 channels"):
        topo.map_channels(["ECG", "Status"])


def test_bipolar_is_never_mapped_silently(topo):
    mapping = topo.map_channels(["FP1-F7", "Cz"])
    assert mapping.excluded[0].name == "FP1-F7"
    assert "bipolar derivation FP1-F7" in mapping.excluded[0].reason
    with pytest.raises(ChannelMappingError, match="bipolar='midpoint'"):
        topo.map_channels(["FP1-F7", "Cz"], bipolar="raise")
    mapping = topo.map_channels(["F7-T3", "Cz"], bipolar="midpoint")
    f7t3 = mapping.channels[0]
    midpoint = (template_position("F7") + template_position("T7")) / 2
    nearest = np.argmin(np.linalg.norm(topo.positions - midpoint, axis=1))
    assert f7t3.node == nearest and topo.nodes[nearest] == "FT7"
    assert f7t3.method == "position"


def test_non_eeg_types_are_excluded(topo):
    mapping = topo.map_channels(["Cz", "Pz"], types=["eeg", "eog"])
    assert mapping.excluded[0].reason == "channel type 'eog'"
    assert mapping.n_present == 1


def test_reference_name_with_given_position_is_an_electrode(topo):
    mapping = topo.map_channels(["A1", "Cz"], {"A1": topo.positions[topo.index("PZ")]})
    assert mapping.channels[0].node_name == "PZ" and mapping.channels[0].method == "position"
    assert topo.map_channels(["A1", "Cz"]).excluded[0].reason == "reference electrode A1"


def test_positions_from_a_builtin_montage(topo):
    import mne

    names = mne.channels.make_standard_montage("GSN-HydroCel-129").ch_names
    mapping = topo.map_channels(names, "GSN-HydroCel-129")
    assert mapping.counts()["position"] >= 55
    assert all(c.distance_mm <= 40 for c in mapping.channels if c.method == "position")


def test_invalid_options_are_named(topo):
    with pytest.raises(
        ValueError, match=r"'on_unknown' parameter: 'ignore'\. Allowed values: 'raise', 'drop'"
    ):
        topo.map_channels(["Cz"], on_unknown="ignore")
    with pytest.raises(ValueError, match="types has 1 entries but names has 2"):
        topo.map_channels(["Cz", "Pz"], types=["eeg"])


def test_to_nodes_reorders_and_fills(topo):
    mapping = topo.map_channels(["Pz", "ECG", "Cz"])
    data = np.array([[1.0, 9.0, 3.0]])
    nodes = mapping.to_nodes(data, axis=1)
    assert nodes.shape == (1, 62)
    assert nodes[0, topo.index("PZ")] == 1.0 and nodes[0, topo.index("CZ")] == 3.0
    assert np.count_nonzero(nodes) == 2
    with pytest.raises(ValueError, match="3 input channels"):
        mapping.to_nodes(np.zeros((1, 2)), axis=1)


def test_to_dict_schema(topo):
    out = topo.map_channels(["EEG T3", "ECG ECG", "TP10"]).to_dict()
    assert set(out) == {"channels", "present", "excluded"}
    assert len(out["present"]) == 62 and sum(out["present"]) == 2
    t3, tp10 = out["channels"]
    assert t3 | {} == {
        "name": "EEG T3", "node": "T7", "region": 6, "method": "alias",
        "distance_mm": None, "reason": None,
    }  # fmt: skip
    assert tp10["node"] == "TP8" and tp10["method"] == "position" and tp10["distance_mm"] > 30
    assert out["excluded"] == [{"name": "ECG ECG", "reason": "ECG channel"}]
