"""Deployment: a trained model as an ONNX graph, with its input contract inside.

``export_onnx`` writes one ``.onnx`` file: the network (the attention mask and the absent-node
handling inside the graph, a dynamic batch) and, in the file's metadata, the model's
:class:`~mmm_eeg.spec.FeatureSpec` and class names, so a runtime in any language knows how to
make its input. Reading it needs onnx/onnxruntime only (protobuf, never pickle).

With ``channels`` (a headset's channel names) the graph is the model's fixed-montage form
(:meth:`~mmm_eeg.model.MMMEncoder.for_montage`): its input holds only the mapped channels, the
absent nodes are out of the sequence, and the graph is smaller and faster.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mmm_eeg.atomic import atomic_path
from mmm_eeg.errors import UserInputError
from mmm_eeg.inference import MMMModel

logger = logging.getLogger(__name__)


class _Unified(nn.Module):
    """An encoder's unified representation (region and class tokens) as a module's output."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.encoder.unified(x, present)


def export_onnx(model: MMMModel, out: str | Path, channels: Sequence[str] | None = None) -> Path:
    """Write ``model`` as an ONNX file (atomically).

    Parameters
    ----------
    model : MMMModel
        From :func:`mmm_eeg.load_model`. A classifier exports ``(x, present) -> logits``; an
        encoder ``(x, present) -> tokens`` (batch, n_regions + 1, dim).
    out : str | path-like
        The ``.onnx`` file.
    channels : sequence of str | None
        Export for this montage only (an encoder with ``absent="exclude"``): the input ``x`` is
        (batch, n_mapped, n_inputs), one row per channel the topology maps, in the order the
        metadata's ``input_channels`` lists; there is no ``present`` input. None: all nodes.

    Returns
    -------
    Path
        ``out``. Its metadata holds ``feature_spec`` (JSON), ``classes`` (JSON, classifiers),
        ``output`` ("logits" or "tokens") and, with ``channels``, ``input_channels`` and
        ``input_nodes`` (JSON).

    Notes
    -----
    Inputs: ``x`` float32 (batch, n_nodes, n_inputs): DE standardised as the spec says, and the
    signal for raw tokens; ``present`` bool (batch, n_nodes). An encoder with
    ``absent="noise"`` draws its noise inside the graph.
    """
    try:
        import onnx
    except ImportError as err:
        raise UserInputError(
            "ONNX export needs the onnx and onnxscript packages: pip install 'mmm-eeg[onnx]'."
        ) from err
    out = Path(out)
    network = model.network if model.is_classifier else _Unified(model.encoder)
    topology = model.encoder.topology
    x = torch.zeros(2, topology.n_nodes, model.encoder.n_inputs)
    present = torch.ones(2, topology.n_nodes, dtype=torch.bool)
    present[0, 0] = False  # trace the absent-node path too
    inputs, names = (x, present), ["x", "present"]
    metadata = {"feature_spec": json.dumps(model.spec.to_dict())}
    if channels is not None:
        if model.encoder.absent != "exclude":
            raise UserInputError(
                f"This model fills absent nodes ({model.encoder.absent!r}), so they take part in "
                "every window; export it without channels.",
                parameter="channels",
            )
        mapping = topology.map_channels(list(channels), on_unknown="drop")  # raises if none
        nodes = np.flatnonzero(mapping.present)
        network = (model.network if model.is_classifier else model.encoder).for_montage(nodes)
        inputs, names = (x[:, nodes],), ["x"]
        metadata["input_channels"] = json.dumps([channels[i] for i in mapping.source[nodes]])
        metadata["input_nodes"] = json.dumps([topology.nodes[i] for i in nodes])
    network = network.eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    output = "logits" if model.is_classifier else "tokens"
    metadata["output"] = output
    if model.is_classifier:
        metadata["classes"] = json.dumps(model.classes)
    with atomic_path(out) as tmp:
        program = torch.onnx.export(
            network, inputs, None, input_names=names, output_names=[output],
            dynamic_shapes=tuple({0: batch} for _ in names), dynamo=True, verbose=False,
        )  # fmt: skip
        proto = program.model_proto
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, tmp)
    logger.info("Exported %s to %s", type(network).__name__, out)
    return out
