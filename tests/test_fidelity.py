"""Our encoder equals an independent reference implementation on the released checkpoint."""

import mne
import numpy as np
import pytest
import torch

from mmm_eeg import UnifiedTopology
from mmm_eeg.features import differential_entropy
from mmm_eeg.model.physiopro import load_physiopro_encoder, read_state_dict
from tests.reference_mmm import ReferenceMMM, reference_mask, reference_pos_embed

FLOAT32 = 2e-5  # agreement of two float32 formulations of the same forward pass


@pytest.fixture(scope="module")
def real_de(eeg_data):
    """Per-band standardised DE of real recordings on the 62-node topology (+ present)."""
    topo = UnifiedTopology.default()
    xs, ps = [], []
    for path in (eeg_data / "eegmmidb/S001/S001R02.edf", eeg_data / "eegmat/Subject30_2.edf"):
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
        mapping = topo.map_channels(raw.ch_names)
        de = differential_entropy(raw.get_data(), raw.info["sfreq"])[:16]
        de = (de - de.mean((0, 1))) / de.std((0, 1))
        xs.append(mapping.to_nodes(de, axis=1))
        ps.append(np.broadcast_to(mapping.present, (len(de), 62)))
    return (
        torch.tensor(np.concatenate(xs), dtype=torch.float32),
        torch.tensor(np.concatenate(ps)),
    )


def test_reference_encoding_and_mask_match_ours(reference_table):
    from mmm_eeg.model.pos_embed import position_encoding

    topo = UnifiedTopology.default()
    ours = torch.tensor(position_encoding(topo, 64, "2d"), dtype=torch.float32)
    torch.testing.assert_close(ours, reference_pos_embed(reference_table, 64), rtol=0, atol=1e-6)
    assert torch.equal(torch.tensor(topo.attention_mask()), reference_mask(reference_table))


def test_released_checkpoint_forward_matches_reference(checkpoint_path, reference_table, real_de):
    x, present = real_de
    state = read_state_dict(checkpoint_path)
    torch.manual_seed(0)  # the region tokens (absent from the file) are drawn, then shared
    reference = ReferenceMMM(reference_table).eval()
    missing, unexpected = reference.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) == {"supernodes"}

    ours = load_physiopro_encoder(checkpoint_path).eval()
    assert ours.load_report["initialised"] == ["pos_embed", "region_tokens"]
    with torch.no_grad():
        ours.region_tokens.copy_(reference.supernodes)
        # The inputs the reference sees: all 62 nodes fed, absent ones as zeros.
        expected = reference(x * present[..., None])
        got = ours(x * present[..., None])
        # float32: fused SDPA and MHA sum in different orders, and the CPU kernels chosen vary
        # between processors; 2e-5 on outputs of magnitude ~3 is float32 rounding over 6 blocks
        # (the float64 check below shows the math is identical).
        assert (got - expected).abs().max().item() <= FLOAT32
        # absent="zero" with present given is the same computation.
        ours.absent = "zero"
        assert (ours(x, present) - expected).abs().max().item() <= FLOAT32
        # absent="exclude" (default) differs where nodes are absent, and only then.
        ours.absent = "exclude"
        full = x[:16]  # eegmmidb: 59 of 62 present -> differs
        assert (ours(full, present[:16]) - expected[:16]).abs().max().item() > 1e-3
        all_present = torch.ones_like(present[:4])
        assert (ours(x[:4], all_present) - reference(x[:4])).abs().max().item() <= FLOAT32
        # In float64 the two formulations agree to rounding: the math is identical.
        ours, reference, x64 = ours.double(), reference.double(), x.double() * present[..., None]
        assert (ours(x64) - reference(x64)).abs().max().item() <= 1e-10
