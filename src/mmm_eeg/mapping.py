"""Channel mapping: which input channel feeds which node of a :class:`UnifiedTopology`.

A channel is placed by its name (a node's own name or an alias such as ``T3`` for ``T7``), else
by its position (the nearest node within a tolerance). Conflicts, bipolar derivations and
non-EEG channels are resolved here; the result, :class:`ChannelMapping`, says why each channel
went where it went.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from mmm_eeg.channels import ParsedName, clean_name, parse_channel_name
from mmm_eeg.errors import ChannelMappingError
from mmm_eeg.montage import resolve_positions, template_position
from mmm_eeg.validation import check_option, check_range

if TYPE_CHECKING:
    from mmm_eeg.topology import UnifiedTopology

logger = logging.getLogger(__name__)

#: Default tolerance for position matching, in millimetres. On the template, neighbouring nodes
#: of the default topology are 19.7-38.1 mm apart (median 30.5); the inferior 10-10 ring just
#: outside it (F9, FT9, T9, TP9, P9 and their right twins) lies 38.5-39.4 mm from its nearest
#: node, and the ear/mastoid references 59 mm or more. 40 mm accepts one 10-10 step outside the
#: layout and nothing farther.
DEFAULT_TOLERANCE_MM = 40.0


@dataclass(frozen=True)
class ChannelMatch:
    """How one EEG input channel was placed on the topology.

    Attributes
    ----------
    index : int
        Position of the channel in the input list.
    name : str
        The channel's name as given.
    node : int or None
        Index of the node it feeds, or None when it feeds none.
    node_name : str or None
        Name of that node.
    region : int or None
        Region index of that node.
    method : {"name", "alias", "position"} or None
        How it was matched: the node's own name, an alias (``T3`` for ``T7``), or the nearest
        node to its position.
    distance_mm : float or None
        Distance to the node for position matches (None otherwise).
    reason : str or None
        Why the channel feeds no node (None when it does).
    """

    index: int
    name: str
    node: int | None
    node_name: str | None
    region: int | None
    method: Literal["name", "alias", "position"] | None
    distance_mm: float | None
    reason: str | None = None


@dataclass(frozen=True)
class ExcludedChannel:
    """An input channel that is not scalp EEG (or is a reference or unrequested bipolar)."""

    index: int
    name: str
    reason: str


@dataclass(frozen=True)
class ChannelMapping:
    """Result of :meth:`UnifiedTopology.map_channels`.

    Attributes
    ----------
    topology : UnifiedTopology
        The topology mapped onto.
    channels : tuple of ChannelMatch
        Every EEG channel of the input, mapped or not, in input order.
    excluded : tuple of ExcludedChannel
        Inputs that are not scalp EEG electrodes, with the reason.
    source : ndarray of int, shape (n_nodes,)
        For each node, the index of the input channel that feeds it, or -1.
    """

    topology: UnifiedTopology
    channels: tuple[ChannelMatch, ...]
    excluded: tuple[ExcludedChannel, ...]
    source: np.ndarray = field(repr=False)

    @property
    def present(self) -> np.ndarray:
        """Boolean vector over nodes: True where some input channel feeds the node."""
        return self.source >= 0

    @property
    def n_present(self) -> int:
        """Number of nodes fed by an input channel."""
        return int(self.present.sum())

    def counts(self) -> dict[str, int]:
        """Number of channels per outcome: each method, ``unmapped`` and ``excluded``."""
        out = {"name": 0, "alias": 0, "position": 0, "unmapped": 0}
        for ch in self.channels:
            out[ch.method or "unmapped"] += 1
        out["excluded"] = len(self.excluded)
        return out

    def to_nodes(self, data: np.ndarray, axis: int = 0, fill: float = 0.0) -> np.ndarray:
        """Reorder an array's channel axis into node order.

        Parameters
        ----------
        data : ndarray
            Array whose ``axis`` runs over the input channels (in the order given to
            :meth:`UnifiedTopology.map_channels`).
        axis : int
            The channel axis.
        fill : float
            Value for nodes no channel feeds.

        Returns
        -------
        ndarray
            Same shape except ``axis``, which now has ``n_nodes`` entries in node order.
        """
        data = np.asarray(data)
        n_inputs = len(self.channels) + len(self.excluded)
        if data.shape[axis] != n_inputs:
            raise ValueError(
                f"data has {data.shape[axis]} channels on axis {axis}, but the mapping was made "
                f"for {n_inputs} input channels; pass the array the mapping was built for."
            )
        picked = np.take(data, np.maximum(self.source, 0), axis=axis)
        shape = [1] * data.ndim
        shape[axis] = -1
        return np.where(self.present.reshape(shape), picked, np.asarray(fill, dtype=data.dtype))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: channels, present (node order) and excluded."""
        return {
            "channels": [
                {
                    "name": c.name,
                    "node": c.node_name,
                    "region": c.region,
                    "method": c.method,
                    "distance_mm": None if c.distance_mm is None else round(c.distance_mm, 2),
                    "reason": c.reason,
                }
                for c in self.channels
            ],
            "present": [bool(p) for p in self.present],
            "excluded": [{"name": e.name, "reason": e.reason} for e in self.excluded],
        }


class _Candidate(NamedTuple):
    """One EEG channel on its way to a node (before conflicts are resolved)."""

    index: int
    name: str
    node: int | None
    method: Literal["name", "alias", "position"] | None
    distance_mm: float | None
    failure: str | None  # "unknown" (no name match, no position) or why it is too far


def map_channels(
    topology: UnifiedTopology,
    names: Sequence[str],
    positions: Mapping[str, Any] | str | Path | Any | None = None,
    *,
    types: Sequence[str] | None = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    on_unknown: Literal["raise", "drop"] = "raise",
    bipolar: Literal["exclude", "midpoint", "raise"] = "exclude",
) -> ChannelMapping:
    """Decide which input channel feeds which node; see :meth:`UnifiedTopology.map_channels`."""
    names = list(names)
    check_option("on_unknown", on_unknown, ("raise", "drop"))
    check_option("bipolar", bipolar, ("exclude", "midpoint", "raise"))
    check_range("tolerance_mm", tolerance_mm, low=0, low_open=True)
    if types is not None and len(types) != len(names):
        raise ValueError(f"types has {len(types)} entries but names has {len(names)}.")
    known = resolve_positions(positions)

    excluded: list[ExcludedChannel] = []
    candidates: list[_Candidate] = []
    for i, raw in enumerate(names):
        parsed = parse_channel_name(raw)
        if parsed.kind == "reference" and clean_name(raw) in known:
            # A position given for it means a scalp electrode (BioSemi's A1 is not an ear).
            parsed = ParsedName(raw, "electrode", (clean_name(raw),))
        if types is not None and str(types[i]).lower() != "eeg":
            excluded.append(ExcludedChannel(i, raw, f"channel type '{types[i]}'"))
        elif parsed.kind in ("non-eeg", "reference"):
            excluded.append(ExcludedChannel(i, raw, parsed.detail))
        elif parsed.kind == "bipolar" and bipolar != "midpoint":
            excluded.append(
                ExcludedChannel(i, raw, f"{parsed.detail}; map it with bipolar='midpoint'")
            )
        else:
            candidates.append(_Candidate(i, raw, *_match(topology, parsed, known, tolerance_mm)))
    bipolars = [e.name for e in excluded if e.reason.startswith("bipolar derivation")]
    if bipolars and bipolar == "raise":
        raise ChannelMappingError(
            f"Bipolar derivations found: {', '.join(bipolars)}. Pass bipolar='midpoint' to map "
            "each to the node nearest the midpoint of its electrodes, or bipolar='exclude' to "
            "leave them out.",
            parameter="bipolar",
        )
    unknown = [c.name for c in candidates if c.failure == "unknown"]
    if unknown and on_unknown == "raise":
        raise ChannelMappingError(
            f"Unknown channel names with no position: {', '.join(map(repr, unknown))}. "
            "Rename them to 10-05 names, give their positions (a montage name or file), or "
            "leave them out with on_unknown='drop'.",
            parameter="on_unknown",
        )
    return _resolve_conflicts(topology, names, candidates, excluded)


def _match(
    topology: UnifiedTopology,
    parsed: ParsedName,
    known: Mapping[str, np.ndarray],
    tolerance_mm: float,
) -> tuple[int | None, str | None, float | None, str | None]:
    """Node, method, distance and failure for one electrode or bipolar channel."""
    if parsed.kind == "electrode" and parsed.electrodes[0] in topology.nodes:
        method = "alias" if parsed.aliased else "name"
        return topology.index(parsed.electrodes[0]), method, None, None
    keys = [clean_name(parsed.raw)] if parsed.kind == "electrode" else []
    points = []
    for electrode in parsed.electrodes:
        pos = next((known[k] for k in (*keys, electrode) if k in known), None)
        points.append(pos if pos is not None else template_position(electrode))
    if any(p is None for p in points):
        return None, None, None, "unknown"
    point = np.mean(points, axis=0)
    distances = np.linalg.norm(topology.positions - point, axis=1) * 1000.0
    node = int(np.argmin(distances))
    if distances[node] > tolerance_mm:
        far = (
            f"nearest node {topology.nodes[node]} is {distances[node]:.1f} mm away "
            f"(tolerance {tolerance_mm:g} mm)"
        )
        return None, None, float(distances[node]), far
    return node, "position", float(distances[node]), None


def _resolve_conflicts(
    topology: UnifiedTopology,
    names: list[str],
    candidates: list[_Candidate],
    excluded: list[ExcludedChannel],
) -> ChannelMapping:
    source = np.full(topology.n_nodes, -1, dtype=np.int64)
    # Name/alias matches first, then nearer positions, then earlier channels.
    ranked = sorted(
        (c for c in candidates if c.node is not None),
        key=lambda c: (c.method == "position", c.distance_mm, c.index),
    )
    for c in ranked:
        if source[c.node] < 0:
            source[c.node] = c.index
    matches = []
    for c in candidates:
        node, method = c.node, c.method
        reason = "unknown name with no position" if c.failure == "unknown" else c.failure
        if node is not None and source[node] != c.index:
            reason = f"node {topology.nodes[node]} is already fed by {names[source[node]]!r}"
            node, method = None, None
        matches.append(
            ChannelMatch(
                index=c.index,
                name=c.name,
                node=node,
                node_name=None if node is None else topology.nodes[node],
                region=None if node is None else int(topology.region_of[node]),
                method=method,
                distance_mm=c.distance_mm if node is not None else None,
                reason=reason,
            )
        )
    source.setflags(write=False)
    mapping = ChannelMapping(topology, tuple(matches), tuple(excluded), source)
    if not mapping.n_present:
        bipolars = [e.name for e in excluded if e.reason.startswith("bipolar derivation")]
        hint = (
            f"The channels are bipolar derivations ({', '.join(bipolars[:3])}, ...): map them "
            "with bipolar='midpoint'."
            if bipolars
            else "Check the channel names or give electrode positions."
        )
        raise ChannelMappingError(
            f"None of the {len(names)} channels maps onto topology {topology.name!r} "
            f"(excluded: {len(excluded)}, unmapped: {len(matches)}). {hint}"
        )
    logger.info("Mapped %d of %d channels onto %d nodes", len(ranked), len(names), topology.n_nodes)
    return mapping
