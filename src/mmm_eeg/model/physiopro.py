"""The reference (PhysioPro) checkpoint layout: import into and export from :class:`MMMEncoder`.

Reference keys: ``network.cls_token (1, 1, dim)``, ``network.patch_embed.{weight, bias}``,
``network.blocks.N.{norm1, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, norm2,
mlp.fc1, mlp.fc2}``, ``network.norm``, ``network.fc_norm``; the fine-tuning model adds
``network.pos_embed``, ``network.attn_mask`` and ``supernodes (1, n_regions, 5)`` plus its head.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from mmm_eeg.errors import UserInputError
from mmm_eeg.model.encoder import MMMEncoder

logger = logging.getLogger(__name__)

_PREFIX = "network."
#: Our parameters that the released encoder file lacks: they come from initialisation.
FROM_INITIALISATION = ("pos_embed", "region_tokens")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a PyTorch state dict without ever executing pickled code.

    Parameters
    ----------
    path : str | path-like
        A ``.pt``/``.pth`` file holding a plain state dict (optionally under ``"state_dict"``
        or ``"model"``).

    Returns
    -------
    dict of str to Tensor
        The tensors.
    """
    path = Path(path)
    obj = load_plain(path)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserInputError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}.")
    return obj


def load_plain(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain values only, never pickled code;
    a file that is not one is a clear error naming it."""
    if not path.is_file():
        raise UserInputError(f"{path}: no such checkpoint file.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserInputError(
            f"{path}: refused to load. It holds objects other than tensors and plain values "
            f"({_unpickler_complaint(err)}); unpickling it could run arbitrary code, which "
            "mmm-eeg never does. Save checkpoints as torch.save(model.state_dict(), path) or "
            "with save_pretrained."
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise UserInputError(f"{path}: not a readable PyTorch checkpoint ({err}).") from err


def _unpickler_complaint(err: Exception) -> str:
    match = re.search(r"Unsupported (?:global|operand)[^\n]*", str(err))
    return match.group(0) if match else str(err).splitlines()[0]


def checkpoint_filter_fn(
    state: dict[str, torch.Tensor], encoder: MMMEncoder
) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Remap a reference state dict onto :class:`MMMEncoder` names.

    Parameters
    ----------
    state : dict of str to Tensor
        Reference keys (``network.*``, ``supernodes``, head layers).
    encoder : MMMEncoder
        The target; its topology must be the one the file's ``attn_mask`` describes, if any.

    Returns
    -------
    remapped : dict of str to Tensor
        Tensors under our names.
    report : dict
        ``{"loaded": [...], "initialised": [...], "ignored": [...]}`` (our names / file keys).
    """
    remapped: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        if key == "supernodes":
            remapped["region_tokens"] = value
        elif key == _PREFIX + "attn_mask":
            expected = encoder.attn_mask.cpu()
            if value.shape != expected.shape or not torch.equal(value.bool(), expected):
                raise UserInputError(
                    f"The checkpoint's attention mask {tuple(value.shape)} is not the hierarchy "
                    f"mask of topology {encoder.topology.name!r}: it was trained on another "
                    "topology. Build the encoder with that topology."
                )
        elif key == _PREFIX + "pos_embed":
            remapped["pos_embed"] = value.reshape(1, *value.shape[-2:])
        elif key.startswith(_PREFIX):
            remapped[key[len(_PREFIX) :]] = value
        else:
            ignored.append(key)
    ours = encoder.state_dict()
    unexpected = sorted(set(remapped) - set(ours))
    if unexpected:
        raise UserInputError(
            f"Checkpoint keys with no counterpart in MMMEncoder: {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''}. This is not an MMM encoder checkpoint "
            "(or its depth differs)."
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(ours[k].shape)}"
        for k, v in remapped.items()
        if v.shape != ours[k].shape
    ]
    if wrong:
        raise UserInputError(f"Checkpoint shapes do not match the encoder: {wrong[:6]}.")
    missing = sorted(set(ours) - set(remapped))
    required = [k for k in missing if k not in FROM_INITIALISATION]
    if required:
        raise UserInputError(
            f"The checkpoint lacks encoder weights {required[:8]}"
            f"{' ...' if len(required) > 8 else ''}; it is not a complete MMM encoder."
        )
    report = {"loaded": sorted(remapped), "initialised": missing, "ignored": ignored}
    return remapped, report


def load_physiopro_encoder(path: str | Path, **kwargs: Any) -> MMMEncoder:
    """Build an :class:`MMMEncoder` from a reference checkpoint.

    Width and depth are read from the file; other options (``topology``, ``heads``,
    ``absent``, ...) are passed to :class:`MMMEncoder`. Parameters the file lacks (the position
    embedding and the region tokens, for the released encoder) keep their initial values and are
    listed in ``encoder.load_report["initialised"]``; keys outside the encoder (a head) are listed
    under ``"ignored"``.

    Parameters
    ----------
    path : str | path-like
        ``tuh_pretrained_encoder_base.pt`` or a reference fine-tuning state dict.
    **kwargs
        Further :class:`MMMEncoder` arguments.

    Returns
    -------
    MMMEncoder
        In eval mode, with ``load_report`` set.
    """
    state = read_state_dict(path)
    embed = state.get(_PREFIX + "patch_embed.weight")
    if embed is None or embed.ndim != 2:
        raise UserInputError(
            f"{path}: no 'network.patch_embed.weight' matrix; this is not a PhysioPro MMM "
            f"checkpoint (its first keys: {list(state)[:5]})."
        )
    depth = 1 + max(
        (int(m.group(1)) for k in state if (m := re.match(r"network\.blocks\.(\d+)\.", k))),
        default=-1,
    )
    if depth == 0:
        raise UserInputError(f"{path}: no 'network.blocks.N' weights; not an MMM encoder.")
    kwargs.setdefault("in_features", embed.shape[1])
    encoder = MMMEncoder(dim=embed.shape[0], depth=depth, **kwargs)
    remapped, report = checkpoint_filter_fn(state, encoder)
    encoder.load_state_dict(remapped, strict=False)
    encoder.load_report = report
    logger.info(
        "Loaded %d tensors from %s; from initialisation: %s; ignored: %s",
        len(report["loaded"]), path, report["initialised"], report["ignored"],
    )  # fmt: skip
    return encoder.eval()


def to_physiopro_state_dict(encoder: MMMEncoder) -> dict[str, torch.Tensor]:
    """The state dict the reference ``MMM_Finetune`` model loads with strict key matching.

    ``network.pos_embed`` is (n_tokens, dim), ``network.attn_mask`` (n_tokens, n_tokens) with
    True = blocked, ``supernodes`` (1, n_regions, in_features).
    """
    if not encoder.hierarchy:
        raise UserInputError(
            "The reference model always has region tokens and the hierarchy mask; an encoder "
            "built with hierarchy=False has no PhysioPro form. Save it with save_pretrained."
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in encoder.state_dict().items():
        value = value.detach().cpu().clone()
        if key == "region_tokens":
            out["supernodes"] = value
        elif key == "pos_embed":
            out[_PREFIX + "pos_embed"] = value[0]
        else:
            out[_PREFIX + key] = value
    out[_PREFIX + "attn_mask"] = encoder.attn_mask.detach().cpu().clone()
    return out
