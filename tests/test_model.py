"""Encoder, autoencoder, masking, classifier and checkpoint formats."""

import json
import pickle

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mmm_eeg import UnifiedTopology, UserInputError
from mmm_eeg.cli import app
from mmm_eeg.model import (
    MaskSchedule,
    MMMAutoencoder,
    MMMClassifier,
    MMMEncoder,
    channel_dropout,
    random_mask,
    regional_mask,
    to_physiopro_state_dict,
)
from mmm_eeg.model.physiopro import load_physiopro_encoder, read_state_dict

TOPO = UnifiedTopology.default()
REGION_OF = torch.tensor(TOPO.region_of)


def small_encoder(**kw):
    torch.manual_seed(0)
    return MMMEncoder(dim=16, depth=2, heads=4, **kw)


# -- encoder --------------------------------------------------------------------------------------


def test_encoder_shapes_and_unified():
    enc = small_encoder().eval()
    x = torch.randn(3, 62, 5)
    tokens = enc(x)
    assert tokens.shape == (3, 80, 16)
    torch.testing.assert_close(enc.unified(x), tokens[:, 62:])
    with pytest.raises(ValueError, match=r"\(batch, 62, 5\)"):
        enc(torch.randn(3, 19, 5))


def test_exclude_blocks_all_leakage_from_absent_nodes():
    enc = small_encoder(absent="exclude").eval()
    present = torch.ones(2, 62, dtype=torch.bool)
    present[:, TOPO.index("CZ")] = False
    x = torch.randn(2, 62, 5)
    y = x.clone()
    y[:, TOPO.index("CZ")] = 1e3  # whatever an absent node holds changes nothing
    out_x, out_y = enc(x, present), enc(y, present)
    torch.testing.assert_close(out_x[:, 62:], out_y[:, 62:])
    # the same absent node under "zero" still takes part in attention (as a zero input)
    enc.absent = "zero"
    assert not torch.allclose(enc(x, present), out_x)


def test_noise_policy_fills_absent_nodes_randomly():
    enc = small_encoder(absent="noise").eval()
    present = torch.zeros(1, 62, dtype=torch.bool)
    present[:, :10] = True
    x = torch.randn(1, 62, 5)
    assert not torch.allclose(enc(x, present), enc(x, present))


def test_masked_channels_are_zeroed_inputs():
    enc = small_encoder().eval()
    x = torch.randn(2, 62, 5)
    masked = torch.zeros(2, 62, dtype=torch.bool)
    masked[:, :5] = True
    y = x.clone()
    y[:, :5] = 0
    torch.testing.assert_close(enc(x, masked=masked), enc(y))


def test_sample_without_present_node_is_an_error():
    with pytest.raises(ValueError, match="no present node"):
        small_encoder()(torch.randn(1, 62, 5), torch.zeros(1, 62, dtype=torch.bool))


@pytest.mark.parametrize("hierarchy", [True, False])
def test_fixed_montage_gives_the_unified_representation_from_fewer_tokens(hierarchy):
    enc = small_encoder(hierarchy=hierarchy).eval()
    rng = np.random.default_rng(0)
    for n_present in (1, 4, 19, 62):
        nodes = rng.choice(62, n_present, replace=False)
        present = torch.zeros(3, 62, dtype=torch.bool)
        present[:, nodes] = True
        x = torch.randn(3, 62, 5)
        fixed = enc.for_montage(nodes)  # any order; the input follows the sorted one
        with torch.no_grad():
            expected = enc.unified(x, present)
            got = fixed(x[:, np.sort(nodes)])
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        # The absent nodes really are gone from the sequence.
        assert fixed.attn_mask.shape[0] == n_present + enc.n_tokens - 62


def test_compiled_fixed_montage_runs_under_inference_mode_and_no_grad():
    """A compiled fixed montage is called under ``inference_mode`` (a live loop, a server) and
    under ``no_grad``: both give the eager network's output (dynamo once failed here on a guard
    of a numpy attribute)."""
    from mmm_eeg.model.fixed_montage import compile_for_inference

    clf = MMMClassifier(small_encoder(), n_outputs=2).eval()
    fixed = clf.for_montage(np.arange(0, 62, 3))
    compiled = compile_for_inference(fixed)
    x = torch.randn(1, 21, 5)
    with torch.no_grad():
        expected = fixed(x)
    for _ in range(2):
        with torch.inference_mode():
            torch.testing.assert_close(compiled(x), expected, atol=1e-5, rtol=1e-5)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), expected, atol=1e-5, rtol=1e-5)


def test_fixed_montage_is_a_frozen_snapshot_and_checks_its_input():
    enc = small_encoder().eval()
    fixed = enc.for_montage([3, 1, 2])
    x = torch.randn(2, 3, 5)
    before = fixed(x)
    assert not any(p.requires_grad for p in fixed.parameters())
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(1.0)
    torch.testing.assert_close(fixed(x), before)
    with pytest.raises(ValueError, match=r"\(batch, 3, 5\)"):
        fixed(torch.randn(2, 4, 5))
    for nodes, message in (([], "at least one"), ([0, 62], r"\[0, 62\)"), ([1, 1], "repeated")):
        with pytest.raises(ValueError, match=message):
            enc.for_montage(nodes)
    with pytest.raises(ValueError, match="absent='noise'"):
        small_encoder(absent="noise").for_montage([0, 1])


def test_fixed_montage_classifier_gives_the_classifiers_logits():
    clf = MMMClassifier(small_encoder(), n_outputs=3).eval()
    nodes = np.arange(0, 62, 3)
    present = torch.zeros(4, 62, dtype=torch.bool)
    present[:, nodes] = True
    x = torch.randn(4, 62, 5)
    with torch.no_grad():
        torch.testing.assert_close(
            clf.for_montage(nodes)(x[:, nodes]), clf(x, present), atol=1e-5, rtol=1e-5
        )


def test_prenorm_block_differs_from_reference_block():
    ref, pre = small_encoder(), small_encoder(block="prenorm")
    pre.load_state_dict(ref.state_dict())
    x = torch.randn(2, 62, 5)
    assert not torch.allclose(ref.eval()(x), pre.eval()(x))


# -- masking ---------------------------------------------------------------------------------------


def test_random_mask_fraction_and_presence():
    present = torch.zeros(4, 62, dtype=torch.bool)
    for row, k in enumerate((2, 8, 20, 62)):  # 2, 8, 20 and 62 present nodes
        present[row, torch.randperm(62, generator=torch.Generator().manual_seed(row))[:k]] = True
    masked = random_mask(present, 0.5, torch.Generator().manual_seed(2))
    assert not (masked & ~present).any()
    assert masked.sum(1).tolist() == [1, 4, 10, 31]  # half of each, by hand
    assert random_mask(present, 0.25, torch.Generator().manual_seed(2)).sum(1).tolist()[1:] == [
        2,
        5,
        16,
    ]
    again = random_mask(present, 0.5, torch.Generator().manual_seed(2))
    assert torch.equal(masked, again)  # reproducible
    other = random_mask(present, 0.5, torch.Generator().manual_seed(3))
    assert not torch.equal(masked, other)


def test_regional_mask_masks_whole_regions():
    present = torch.ones(32, 62, dtype=torch.bool)
    present[:16, TOPO.regions[3][0]] = False
    masked = regional_mask(present, REGION_OF, 0.35, torch.Generator().manual_seed(0))
    for b in range(32):
        regions = set(REGION_OF[masked[b]].tolist())
        assert len(regions) == round(0.35 * 17)  # 6 of 17
        for r in regions:  # every present node of a masked region is masked
            members = (REGION_OF == r) & present[b]
            assert masked[b][members].all()
    assert not (masked & ~present).any()


def test_mask_edge_cases():
    one = torch.zeros(2, 62, dtype=torch.bool)
    one[:, 0] = True
    assert not random_mask(one, 0.5).any()  # nothing to reconstruct from: mask none
    one_region = torch.zeros(1, 62, dtype=torch.bool)
    one_region[0, list(TOPO.regions[0])] = True  # 5 nodes, one region
    masked = regional_mask(one_region, REGION_OF, 0.35, torch.Generator().manual_seed(0))
    assert masked.sum() == round(0.5 * 5) and not (masked & ~one_region).any()
    with pytest.raises(ValueError, match="no present node"):
        random_mask(torch.zeros(1, 62, dtype=torch.bool))
    with pytest.raises(ValueError, match="ratio"):
        random_mask(one, 1.0)


def test_channel_dropout_keeps_subsets_of_every_size():
    present = torch.zeros(4000, 62, dtype=torch.bool)
    present[:, 10:29] = True  # 19 nodes, like eegmat
    present[0] = False
    present[0, 5] = True  # a one-node sample keeps its node
    kept = channel_dropout(present, 1.0, 3, torch.Generator().manual_seed(0))
    assert not (kept & ~present).any() and kept[0, 5] and kept[0].sum() == 1
    counts = kept[1:].sum(1)
    assert counts.min() == 3 and counts.max() == 19
    assert set(counts.tolist()) == set(range(3, 20))  # every size from min_keep to all
    assert kept[1:, 10:29].float().mean(0).std() < 0.05  # no node favoured
    assert torch.equal(channel_dropout(present, 0.0), present)
    half = channel_dropout(present, 0.5, 3, torch.Generator().manual_seed(1))
    thinned = (half.sum(1) < present.sum(1)).float().mean()
    assert 0.40 < thinned < 0.52  # p = 0.5, minus the draws that keep all 19
    again = channel_dropout(present, 0.5, 3, torch.Generator().manual_seed(1))
    assert torch.equal(half, again)
    with pytest.raises(ValueError, match="p must be"):
        channel_dropout(present, 1.5)
    with pytest.raises(ValueError, match="min_keep"):
        channel_dropout(present, 0.5, 0)


def test_mask_schedule_cycles():
    paper = MaskSchedule(epochs=600)
    assert [paper.strategy(e) for e in (0, 49, 50, 99, 100, 150)] == [
        "random", "random", "regional", "regional", "random", "regional"
    ]  # fmt: skip
    short = MaskSchedule(epochs=10)
    assert [short.strategy(e) for e in range(10)] == ["random"] * 5 + ["regional"] * 5
    mix = MaskSchedule(epochs=10, mode="mix")
    g = torch.Generator().manual_seed(0)
    draws = {mix.strategy(0, g) for _ in range(50)}
    assert draws == {"random", "regional"}


def test_single_stage_mask_modes_never_switch():
    for mode in ("random", "regional"):
        schedule = MaskSchedule(epochs=10, cycle=4, mode=mode)
        assert {schedule.strategy(e) for e in range(10)} == {mode}
    present = torch.ones(4, 62, dtype=torch.bool)
    masked, used = MaskSchedule(epochs=10, mode="regional").mask(present, REGION_OF, 0)
    for row in masked:  # whole regions: a region is either all masked or not at all
        per_region = [set(row[REGION_OF == r].tolist()) for r in range(TOPO.n_regions)]
        assert used == "regional" and all(len(v) == 1 for v in per_region)
    with pytest.raises(ValueError, match="mode"):
        MaskSchedule(epochs=10, mode="global")


# -- ablation switches ----------------------------------------------------------------------------


def test_no_hierarchy_is_a_plain_transformer_over_node_tokens():
    enc = small_encoder(hierarchy=False).eval()
    assert "region_tokens" not in enc.state_dict() and enc.n_tokens == 63
    present = torch.zeros(3, 62, dtype=torch.bool)
    present[:, :19] = True
    x = torch.randn(3, 62, 5)
    tokens = enc(x, present)
    assert tokens.shape == (3, 63, 16)
    # the summary: mean of the present node tokens, then the class token
    expected = torch.stack([tokens[:, :19].mean(1), tokens[:, 62]], dim=1)
    torch.testing.assert_close(enc.unified(x, present), expected)
    # every present node reaches every token: changing one node moves all other node tokens,
    # where the hierarchy keeps a node's influence on other regions' nodes to node attention
    y = x.clone()
    y[:, 0] += 1.0
    moved = (enc(y, present) - tokens).abs().amax(-1)[:, 1:19]
    assert bool((moved > 0).all())
    assert MMMClassifier(enc, 3)(x, present).shape == (3, 3)


def test_plain_decoder_keeps_visible_tokens_and_hides_masked_and_absent():
    ae = MMMAutoencoder(small_encoder(hierarchy=False), decoder_depth=1).eval()
    present = torch.ones(2, 62, dtype=torch.bool)
    present[:, 40:] = False
    masked = random_mask(present, 0.5, torch.Generator().manual_seed(0))
    x = torch.randn(2, 62, 5)
    captured = {}
    ae.decoder_blocks[0].register_forward_pre_hook(lambda m, a: captured.update(first=a[0]))
    ae(x, present, masked)
    tokens = ae.encoder(x, present, masked)
    seen = captured["first"] - ae.decoder_pos_embed
    hidden = masked | ~present
    torch.testing.assert_close(seen[:, :62][hidden], ae.mask_token[0].expand(int(hidden.sum()), -1))
    torch.testing.assert_close(seen[:, :62][~hidden], tokens[:, :62][~hidden])
    torch.testing.assert_close(seen[:, 62], tokens[:, 62])


def test_no_position_encoding_stays_zero_through_training():
    ae = MMMAutoencoder(small_encoder(pos_encoding="none"), decoder_depth=1)
    optimizer = torch.optim.AdamW(ae.parameters(), lr=1e-2)
    present = torch.ones(8, 62, dtype=torch.bool)
    masked = random_mask(present, 0.5, torch.Generator().manual_seed(0))
    for _ in range(3):
        loss, _ = ae.loss(torch.randn(8, 62, 5), present, masked)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for embedding in (ae.encoder.pos_embed, ae.decoder_pos_embed):
        assert not embedding.requires_grad and bool((embedding == 0).all())
    # without the hierarchy too, nodes are told apart only by their inputs (a set of channels):
    # equal inputs give equal tokens
    tokens = small_encoder(pos_encoding="none", hierarchy=False).eval()(torch.ones(1, 62, 5))
    torch.testing.assert_close(tokens[0, :62], tokens[0, :1].expand(62, -1))


@pytest.mark.parametrize(
    "switches", [{"hierarchy": False}, {"pos_encoding": "none"}, {"pos_encoding": "1d"}]
)
def test_ablation_switches_are_saved_and_reload(tmp_path, switches):
    ae = MMMAutoencoder(small_encoder(**switches), decoder_depth=1).eval()
    ae.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())["encoder"]
    assert {k: config[k] for k in switches} == switches
    loaded = MMMAutoencoder.from_pretrained(tmp_path / "m")
    assert {k: getattr(loaded.encoder, k) for k in switches} == switches
    x = torch.randn(2, 62, 5)
    torch.testing.assert_close(loaded(x), ae(x), rtol=0, atol=0)


def test_an_encoder_without_hierarchy_has_no_physiopro_form():
    with pytest.raises(UserInputError, match="hierarchy=False"):
        to_physiopro_state_dict(small_encoder(hierarchy=False))


# -- autoencoder -----------------------------------------------------------------------------------


def test_decoder_sees_only_region_and_class_tokens():
    ae = MMMAutoencoder(small_encoder(), decoder_depth=2).eval()
    x = torch.randn(2, 62, 5)
    captured = {}
    ae.decoder_blocks[0].register_forward_pre_hook(lambda m, a: captured.update(first=a[0]))
    ae(x)
    channels = captured["first"][:, :62] - ae.decoder_pos_embed[:, :62]
    torch.testing.assert_close(channels, ae.mask_token.expand(2, 62, -1))


def test_loss_counts_only_masked_present_nodes():
    ae = MMMAutoencoder(small_encoder(), decoder_depth=1)
    ae.forward = lambda x, present=None, masked=None: torch.zeros_like(x)  # predicts 0
    x = torch.full((2, 62, 5), 5.0)  # error 25 per feature where nothing is special
    x[:, :3] = 2.0  # masked and present: error 4
    x[:, 3] = 10.0  # masked but absent: must not count (error 100)
    present = torch.ones(2, 62, dtype=torch.bool)
    present[:, 3] = False
    masked = torch.zeros(2, 62, dtype=torch.bool)
    masked[:, :4] = True
    loss, _ = ae.loss(x, present, masked)
    assert float(loss) == pytest.approx(4.0)
    ae.loss_on = "all"  # every present node: 3 at 4, 58 at 25
    loss_all, _ = ae.loss(x, present, masked)
    assert float(loss_all) == pytest.approx((3 * 4 + 58 * 25) / 61)


@pytest.mark.parametrize("hierarchy", [True, False])
def test_compact_loss_leaves_absent_nodes_out_with_the_same_result(hierarchy):
    """Windows grouped by montage, each on its own nodes' tokens: the loss, its gradients and
    the present nodes' reconstructions equal the full sequence's; absent nodes read 0."""
    ae = MMMAutoencoder(small_encoder(hierarchy=hierarchy), decoder_depth=2)
    x = torch.randn(100, 62, 5)
    present = torch.zeros(100, 62, dtype=torch.bool)
    present[:, ::3] = True  # 21 nodes for every window
    present[:40, 50:60] = True  # a second montage (40 windows)
    present[40:45, 1] = True  # a rare one (5 windows): run with the rest, on their union
    present[45, ::3] = False  # and one window with fewer nodes than its group's
    present[45, :6] = True
    masked = random_mask(present, 0.5, torch.Generator().manual_seed(0))
    full, full_prediction = ae.loss(x, present, masked)
    params = [p for p in ae.parameters() if p.requires_grad]
    grads = torch.autograd.grad(full, params, allow_unused=True)
    compact, prediction = ae.loss(x, present, masked, compact=True)
    compact_grads = torch.autograd.grad(compact, params, allow_unused=True)
    torch.testing.assert_close(compact, full, rtol=1e-6, atol=1e-6)
    for a, b in zip(compact_grads, grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(prediction[present], full_prediction[present], rtol=1e-5, atol=1e-5)
    assert bool((prediction[~present] == 0).all())


def test_compact_groups_and_their_checks():
    from mmm_eeg.model.autoencoder import MIN_GROUP, montage_groups
    from mmm_eeg.model.encoder import shared_nodes

    present = torch.zeros(MIN_GROUP + 3, 62, dtype=torch.bool)
    present[:, :19] = True
    present[-3:, 30] = True
    groups = montage_groups(present)
    assert [len(g) for g in groups] == [MIN_GROUP, 3]  # the rare montage runs apart
    assert sorted(torch.cat(groups).tolist()) == list(range(MIN_GROUP + 3))
    assert shared_nodes(present[groups[0]]).tolist() == list(range(19))
    assert shared_nodes(torch.ones(2, 62, dtype=torch.bool)) is None
    x = torch.randn(len(present), 62, 5)
    with pytest.raises(ValueError, match="outside nodes"):
        small_encoder().encode(x, present, None, torch.arange(19))
    with pytest.raises(ValueError, match="absent='exclude'"):
        small_encoder(absent="noise").encode(x, present, None, torch.arange(31))


def test_pretraining_steps_lower_the_loss():
    torch.manual_seed(0)
    ae = MMMAutoencoder(small_encoder(), decoder_depth=1)
    x = torch.randn(64, 62, 1).repeat(1, 1, 5) + torch.linspace(-1, 1, 5)  # learnable structure
    present = torch.ones(64, 62, dtype=torch.bool)
    opt = torch.optim.AdamW(ae.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        loss, _ = ae.loss(x, present, random_mask(present, 0.5, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


# -- classifier ------------------------------------------------------------------------------------


def test_classifier_maps_channels_itself():
    enc = small_encoder()
    clf = MMMClassifier(enc, 2, ch_names=["EEG Fp1", "EEG T3", "ECG ECG"]).eval()
    x = torch.randn(4, 3, 5)
    nodes = torch.zeros(4, 62, 5)
    nodes[:, TOPO.index("FP1")], nodes[:, TOPO.index("T7")] = x[:, 0], x[:, 1]
    present = torch.zeros(4, 62, dtype=torch.bool)
    present[:, [TOPO.index("FP1"), TOPO.index("T7")]] = True
    plain = MMMClassifier(enc, 2).eval()
    plain.head.load_state_dict(clf.head.state_dict())
    torch.testing.assert_close(clf(x), plain(nodes, present))


def test_frozen_encoder_gets_no_gradient():
    encoder = small_encoder()
    flags = [p.requires_grad for p in encoder.parameters()]
    clf = MMMClassifier(encoder, 3, freeze_encoder=True).train()
    assert [p.requires_grad for p in encoder.parameters()] == flags  # the encoder is untouched
    assert not clf.encoder.training
    clf(torch.randn(2, 62, 5)).sum().backward()
    assert all(p.grad is None for p in clf.encoder.parameters())
    assert all(p.grad is not None for p in clf.head.parameters())


# -- checkpoints -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["encoder", "autoencoder", "classifier"])
def test_save_and_load_pretrained(tmp_path, kind):
    enc = small_encoder(pos_encoding="spherical" if kind == "encoder" else "2d")
    model = {
        "encoder": enc,
        "autoencoder": MMMAutoencoder(enc, decoder_depth=1, head="mlp"),
        "classifier": MMMClassifier(enc, 2, label_names=["rest", "arithmetic"]),
    }[kind].eval()
    model.save_pretrained(tmp_path / "m", metadata={"epochs": 3})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["metadata"] == {"epochs": 3} and config["model"] == type(model).__name__
    loaded = type(model).from_pretrained(tmp_path / "m")
    x = torch.randn(2, 62, 5)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    if kind == "classifier":
        assert loaded.label_names == ["rest", "arithmetic"]
    other = MMMAutoencoder if kind != "autoencoder" else MMMEncoder
    with pytest.raises(UserInputError, match=f"holds a '{type(model).__name__}'"):
        other.from_pretrained(tmp_path / "m")


def test_custom_topology_round_trips(tmp_path):
    topo = UnifiedTopology(["FP1", "FP2", "CZ", "O1", "O2"], [["FP1", "FP2"], ["CZ"], ["O1", "O2"]])
    enc = MMMEncoder(topo, dim=8, depth=1, heads=2)
    enc.save_pretrained(tmp_path)
    loaded = MMMEncoder.from_pretrained(tmp_path)
    assert loaded.topology == topo and loaded.n_tokens == 9


def test_missing_model_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match=r"config\.json is missing"):
        MMMEncoder.from_pretrained(tmp_path)


def test_physiopro_round_trips(tmp_path, checkpoint_path):
    original = read_state_dict(checkpoint_path)
    encoder = load_physiopro_encoder(checkpoint_path)
    exported = to_physiopro_state_dict(encoder)
    assert exported["network.pos_embed"].shape == (80, 64)
    assert exported["network.attn_mask"].dtype == torch.bool
    assert exported["supernodes"].shape == (1, 17, 5)
    for key, value in original.items():  # physiopro -> mmm -> physiopro keeps every tensor
        assert torch.equal(exported[key], value), key
    torch.save(exported, tmp_path / "export.pt")
    again = load_physiopro_encoder(tmp_path / "export.pt")
    assert again.load_report["initialised"] == []
    for key, value in encoder.state_dict().items():  # mmm -> physiopro -> mmm
        assert torch.equal(again.state_dict()[key], value), key


def test_physiopro_full_finetune_dict_ignores_the_head(tmp_path, checkpoint_path):
    state = to_physiopro_state_dict(load_physiopro_encoder(checkpoint_path))
    state["head.0.weight"] = torch.zeros(2, 18 * 64)
    torch.save(state, tmp_path / "finetuned.pt")
    encoder = load_physiopro_encoder(tmp_path / "finetuned.pt")
    assert encoder.load_report["ignored"] == ["head.0.weight"]


def test_foreign_checkpoints_fail_loudly(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(UserInputError, match="not a PhysioPro MMM checkpoint"):
        load_physiopro_encoder(tmp_path / "other.pt")
    enc = to_physiopro_state_dict(small_encoder())
    del enc["network.blocks.1.mlp.fc2.weight"]
    torch.save(enc, tmp_path / "partial.pt")
    with pytest.raises(
        UserInputError, match=r"lacks encoder weights \['blocks.1.mlp.fc2.weight'\]"
    ):
        load_physiopro_encoder(tmp_path / "partial.pt", heads=4)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserInputError, match=r"junk\.pt: refused to load"):
        load_physiopro_encoder(tmp_path / "junk.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(UserInputError, match=r"empty\.pt: not a readable PyTorch checkpoint"):
        load_physiopro_encoder(tmp_path / "empty.pt")


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused(tmp_path, writer):
    target = tmp_path / "pwned.txt"
    payload = {"network.patch_embed.weight": _Exploit(str(target))}
    if writer == "torch.save":
        torch.save(payload, tmp_path / "evil.pt")
    else:
        with open(tmp_path / "evil.pt", "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(UserInputError, match=r"evil\.pt: refused to load.*Unsupported"):
        load_physiopro_encoder(tmp_path / "evil.pt")
    assert not target.exists()
    pickle.loads(pickle.dumps(_Exploit(str(target))))  # the payload is real: it does create it
    assert target.exists()


def test_convert_cli_round_trip(tmp_path, checkpoint_path):
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(checkpoint_path), str(tmp_path / "enc")])
    assert result.exit_code == 0, result.output
    assert "from initialisation: pos_embed, region_tokens" in result.output
    saved = json.loads((tmp_path / "enc" / "config.json").read_text())
    assert saved["feature_spec"]["normalize"] == "subject" and saved["absent"] == "noise"
    assert saved["feature_spec"]["preprocessing"]["window"] == 1.0
    result = runner.invoke(
        app, ["convert", str(tmp_path / "enc"), str(tmp_path / "back.pt"), "--to", "physiopro"]
    )
    assert result.exit_code == 0, result.output
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    for key, value in read_state_dict(checkpoint_path).items():
        assert torch.equal(back[key], value)
    result = runner.invoke(app, ["convert", str(tmp_path / "nope.pt"), str(tmp_path / "x")])
    assert result.exit_code == 2 and "no such checkpoint file" in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dim": 10**9}, r"'dim' parameter: 1000000000; it must be in \[1, 8192\]"),
        ({"depth": "6"}, "'depth' parameter must be int, got str"),
        ({"heads": 5}, "heads=5 does not divide dim=16"),
        ({"surprise": 1}, r"unknown keys \['surprise'\]"),
        ({"topology": {"name": "x"}}, "malformed model config"),
    ],
)
def test_crafted_configs_are_refused(tmp_path, change, message):
    small_encoder().save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(UserInputError, match=message):
        MMMEncoder.from_pretrained(tmp_path / "m")
