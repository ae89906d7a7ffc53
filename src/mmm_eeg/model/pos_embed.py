"""Sin-cos position encodings of the topology's tokens: [nodes, regions, class token].

Every kind encodes one or more coordinates per token with the transformer sin-cos formula,
each coordinate getting an equal share of the width laid out as ``[sin | cos]``:
``omega_k = 10000 ** (-k / (d/2))``, ``enc = [sin(c * omega), cos(c * omega)]``.
A region's coordinates are the mean of its nodes'; the class token's encoding is zero.

Kinds
-----
``"1d"``
    The node's index in the topology.
``"2d"``
    The reference's: dense ranks of x and y over the nodes (``UnifiedTopology.rank_coordinates``),
    x in the first half of the width, y in the second.
``"3d"``
    Dense ranks of x, y and z, a third of the width each.
``"spherical"``
    Azimuth and elevation of the node's position (degrees, head frame), half the width each.
``"none"``
    No position information: every encoding is zero (and the model keeps it zero), the
    ablation's baseline.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option

PositionKind = Literal["1d", "2d", "3d", "spherical", "none"]
POSITION_KINDS: tuple[str, ...] = get_args(PositionKind)
ENCODED_KINDS = ("1d", "2d", "3d", "spherical")  # the kinds that encode coordinates


def sincos_encoding(dim: int, coordinates: np.ndarray) -> np.ndarray:
    """Sin-cos encoding of scalar coordinates.

    Parameters
    ----------
    dim : int
        Output width, even.
    coordinates : ndarray, shape (n,)
        One coordinate per token.

    Returns
    -------
    ndarray, shape (n, dim), float64
        ``[sin(c * omega) | cos(c * omega)]`` with ``omega_k = 10000 ** (-k / (dim / 2))``.
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"A sin-cos encoding needs a positive even width, got {dim}.")
    omega = 1.0 / 10000.0 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    angles = np.asarray(coordinates, dtype=np.float64)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def node_coordinates(topology: UnifiedTopology, kind: PositionKind) -> np.ndarray:
    """The coordinates a position-encoding kind encodes, shape (n_nodes, n_axes)."""
    check_option("pos_encoding", kind, ENCODED_KINDS)
    if kind == "1d":
        return np.arange(topology.n_nodes, dtype=np.float64)[:, None]
    if kind == "2d":
        return topology.rank_coordinates[:, :2].astype(np.float64)
    if kind == "3d":
        return topology.rank_coordinates.astype(np.float64)
    x, y, z = topology.positions.T  # "spherical"
    azimuth = np.degrees(np.arctan2(y, x))
    elevation = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return np.stack([azimuth, elevation], axis=1)


def position_encoding(topology: UnifiedTopology, dim: int, kind: PositionKind = "2d") -> np.ndarray:
    """Encodings of all tokens: nodes, then regions (mean of members), then the class token.

    Parameters
    ----------
    topology : UnifiedTopology
        Gives the tokens and their coordinates.
    dim : int
        Model width. Must split into ``n_axes`` equal even parts: divisible by 2 for ``"1d"``,
        by 4 for ``"2d"`` and ``"spherical"``, by 6 for ``"3d"``.
    kind : {"1d", "2d", "3d", "spherical", "none"}
        Which coordinates to encode (see the module docstring).

    Returns
    -------
    ndarray, shape (n_nodes + n_regions + 1, dim), float64
        The class token's row is zero.
    """
    check_option("pos_encoding", kind, POSITION_KINDS)
    if kind == "none":
        return np.zeros((topology.n_tokens, dim))
    coords = node_coordinates(topology, kind)
    n_axes = coords.shape[1]
    if dim <= 0 or dim % (2 * n_axes):
        raise ValueError(
            f"pos_encoding={kind!r} splits the width into {n_axes} sin|cos halves, so dim must "
            f"be a positive multiple of {2 * n_axes}; got {dim}. "
            f"Try dim={max(2 * n_axes, dim - dim % (2 * n_axes))}."
        )
    region_coords = np.stack([coords[list(r)].mean(0) for r in topology.regions])
    tokens = np.concatenate([coords, region_coords])
    width = dim // n_axes
    encoding = np.concatenate([sincos_encoding(width, tokens[:, a]) for a in range(n_axes)], axis=1)
    return np.concatenate([encoding, np.zeros((1, dim))])
