"""Deployment: a trained model as an ONNX graph, with its input contract inside.

``export_onnx`` writes one ``.onnx`` file: the network (the attention mask and the absent-node
handling inside the graph, a dynamic batch) and, in the file's metadata, the model's
:class:`~mmm_eeg.spec.FeatureSpec` and class names, so a runtime in any language knows how to
make its input. Reading it needs onnx/onnxruntime only (protobuf, never pickle).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

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


def export_onnx(model: MMMModel, out: str | Path) -> Path:
    """Write ``model`` as an ONNX file (atomically).

    Parameters
    ----------
    model : MMMModel
        From :func:`mmm_eeg.load_model`. A classifier exports ``(x, present) -> logits``; an
        encoder ``(x, present) -> tokens`` (batch, n_regions + 1, dim).
    out : str | path-like
        The ``.onnx`` file.

    Returns
    -------
    Path
        ``out``. Its metadata holds ``feature_spec`` (JSON), ``classes`` (JSON, classifiers)
        and ``output`` ("logits" or "tokens").

    Notes
    -----
    Inputs: ``x`` float32 (batch, n_nodes, n_bands), standardised as the spec says; ``present``
    bool (batch, n_nodes). An encoder with ``absent="noise"`` draws its noise inside the graph.
    """
    try:
        import onnx
    except ImportError as err:
        raise UserInputError(
            "ONNX export needs the onnx and onnxscript packages: pip install 'mmm-eeg[onnx]'."
        ) from err
    out = Path(out)
    network = model.network if model.is_classifier else _Unified(model.encoder)
    network = network.eval()
    topology = model.encoder.topology
    x = torch.zeros(2, topology.n_nodes, model.encoder.in_features)
    present = torch.ones(2, topology.n_nodes, dtype=torch.bool)
    present[0, 0] = False  # trace the absent-node path too
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    output = "logits" if model.is_classifier else "tokens"
    with atomic_path(out) as tmp:
        program = torch.onnx.export(
            network, (x, present), None, input_names=["x", "present"], output_names=[output],
            dynamic_shapes={"x": {0: batch}, "present": {0: batch}}, dynamo=True, verbose=False,
        )  # fmt: skip
        proto = program.model_proto
        metadata = {"feature_spec": json.dumps(model.spec.to_dict()), "output": output}
        if model.is_classifier:
            metadata["classes"] = json.dumps(model.classes)
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, tmp)
    logger.info("Exported %s to %s", type(network).__name__, out)
    return out
