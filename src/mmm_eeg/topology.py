"""The unified electrode topology, channel mapping onto it, and the hierarchy attention mask.

Every montage is read by one model through :class:`UnifiedTopology`: a fixed list of named
nodes (electrode sites) grouped into regions. :meth:`UnifiedTopology.map_channels` decides which
input channel feeds which node; :meth:`UnifiedTopology.attention_mask` gives the reference's
hierarchy mask over the ``n_nodes + n_regions + 1`` tokens.

Mask convention: **True = blocked** (as the reference, ``torch.nn.MultiheadAttention`` and
``torch.nn.Transformer`` use it). ``torch.nn.functional.scaled_dot_product_attention`` wants the
opposite (True = may attend): pass ``~mask`` there.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

from mmm_eeg.channels import ParsedName, clean_name, parse_channel_name
from mmm_eeg.errors import ChannelMappingError, UserInputError

logger = logging.getLogger(__name__)

#: The template montage that gives node positions (MNE >= 1.12 name, then its old name).
TEMPLATE_MONTAGES = ("colin27_1005", "standard_1005")

#: CB1/CB2 (Neuroscan Quik-Cap cerebellar sites, below O1/O2) are not in the 10-05 template.
#: They sit one 10 % step below O1/O2 at the level of the inion, which is where the 10-05 system
#: puts I1/I2 (also named O9/O10); we give them those positions.
EXTRA_SITES = {"CB1": "I1", "CB2": "I2"}

#: Default tolerance for position matching, in millimetres. On the template, neighbouring nodes
#: of the default topology are 19.7-38.1 mm apart (median 30.5); the inferior 10-10 ring just
#: outside it (F9, FT9, T9, TP9, P9 and their right twins) lies 38.5-39.4 mm from its nearest
#: node, and the ear/mastoid references 59 mm or more. 40 mm accepts one 10-10 step outside the
#: layout and nothing farther.
DEFAULT_TOLERANCE_MM = 40.0


@cache
def _template_positions() -> dict[str, np.ndarray]:
    """Upper-case 10-05 name -> position (metres, MNE head frame) from MNE's template."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    name = next(m for m in TEMPLATE_MONTAGES if m in builtin)
    positions = montage_positions(mne.channels.make_standard_montage(name))
    for site, source in EXTRA_SITES.items():
        positions[site] = positions[source]
    return positions


def montage_positions(montage: Any) -> dict[str, np.ndarray]:
    """Return a montage's electrode positions in the MNE head frame, keyed by upper-case name.

    Parameters
    ----------
    montage : mne.channels.DigMontage
        Any montage MNE can apply to an ``Info`` (template, file, or ``raw.get_montage()``).

    Returns
    -------
    dict of str to ndarray, shape (3,)
        Positions in metres; channels without a finite position are left out.
    """
    import mne

    names = montage.ch_names
    if not names:
        return {}
    info = mne.create_info(names, 1000.0, "eeg")
    # set_montage converts MRI/unknown frames to head coordinates through the fiducials.
    info.set_montage(montage, on_missing="ignore", verbose="error")
    positions = info.get_montage().get_positions()["ch_pos"]
    return {
        clean_name(k): np.asarray(v, dtype=float)
        for k, v in positions.items()
        if np.all(np.isfinite(v))
    }


def template_position(name: str) -> np.ndarray | None:
    """Position (metres, head frame) of a 10-05 site or alias in the template, or None."""
    return _template_positions().get(clean_name(name))


def dense_rank(values: np.ndarray) -> np.ndarray:
    """Dense rank (0, 1, 2, ...) of each value; equal values share a rank."""
    return rankdata(np.asarray(values), method="dense").astype(np.int64) - 1


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


class UnifiedTopology:
    """Named electrode nodes grouped into regions: the one layout every montage is mapped onto.

    Parameters
    ----------
    nodes : sequence of str
        Node (electrode site) names, unique ignoring case. Their order is the token order.
    regions : sequence of sequence of str
        Each region's node names. Every node belongs to exactly one region.
    positions : array-like, shape (n_nodes, 3) | None
        Node positions in metres, MNE head frame. None: taken from MNE's 10-05 template
        (every node must then be a 10-05 site, an alias, or CB1/CB2).
    rank_source : array-like, shape (n_nodes, 3) | None
        Coordinates whose dense ranks give the reference 2-D/3-D position encoding.
        None: the positions rounded to whole millimetres.
    name : str
        A short name, stored in checkpoints.

    Notes
    -----
    ``UnifiedTopology.default()`` is the 62-node / 17-region SEED layout of the MMM paper.
    """

    def __init__(
        self,
        nodes: Sequence[str],
        regions: Sequence[Sequence[str]],
        positions: np.ndarray | None = None,
        rank_source: np.ndarray | None = None,
        name: str = "custom",
    ) -> None:
        nodes = [clean_name(n) for n in nodes]
        if len(nodes) < 2:
            raise ValueError(f"A topology needs at least 2 nodes, got {len(nodes)}.")
        duplicates = sorted({n for n in nodes if nodes.count(n) > 1})
        if duplicates:
            raise ValueError(f"Node names must be unique; repeated: {', '.join(duplicates)}.")
        index = {n: i for i, n in enumerate(nodes)}
        region_of = np.full(len(nodes), -1, dtype=np.int64)
        region_lists: list[tuple[int, ...]] = []
        for r, members in enumerate(regions):
            members = [clean_name(m) for m in members]
            if not members:
                raise ValueError(f"Region {r} is empty; every region needs at least one node.")
            unknown = [m for m in members if m not in index]
            if unknown:
                raise ValueError(f"Region {r} names nodes not in the topology: {unknown}.")
            for m in members:
                if region_of[index[m]] >= 0:
                    raise ValueError(
                        f"Node {m} is in regions {region_of[index[m]]} and {r}; "
                        "each node must belong to exactly one region."
                    )
                region_of[index[m]] = r
            region_lists.append(tuple(index[m] for m in members))
        orphans = [nodes[i] for i in np.flatnonzero(region_of < 0)]
        if orphans:
            raise ValueError(f"Nodes without a region: {', '.join(orphans)}; assign each one.")
        if positions is None:
            missing = [n for n in nodes if template_position(n) is None]
            if missing:
                raise ValueError(
                    f"No template position for nodes {missing}; pass positions= explicitly."
                )
            positions = np.stack([template_position(n) for n in nodes])
        positions = np.asarray(positions, dtype=float)
        if positions.shape != (len(nodes), 3) or not np.all(np.isfinite(positions)):
            raise ValueError(
                f"positions must be finite with shape ({len(nodes)}, 3), got {positions.shape}."
            )
        if rank_source is None:
            rank_source = np.round(positions * 1000.0)
        rank_source = np.asarray(rank_source, dtype=float)
        if rank_source.shape != (len(nodes), 3):
            raise ValueError(f"rank_source must have shape ({len(nodes)}, 3).")

        self.name = name
        self.nodes: tuple[str, ...] = tuple(nodes)
        self.regions: tuple[tuple[int, ...], ...] = tuple(region_lists)
        self.positions = positions
        self.region_of = region_of
        self.rank_coordinates = np.stack([dense_rank(rank_source[:, k]) for k in range(3)], 1)
        self._index = index
        for arr in (self.positions, self.region_of, self.rank_coordinates):
            arr.setflags(write=False)

    @classmethod
    def default(cls) -> UnifiedTopology:
        """The 62-node / 17-region SEED layout, in the node order of the released checkpoint.

        Positions come from MNE's 10-05 template (CB1/CB2 at I1/I2); the dense ranks behind the
        reference position encoding come from the reference's own coordinate table, shipped as
        ``mmm_eeg/data/seed62_coordinates.csv``.
        """
        return _default_topology()

    @property
    def n_nodes(self) -> int:
        """Number of nodes (channel tokens)."""
        return len(self.nodes)

    @property
    def n_regions(self) -> int:
        """Number of regions (region tokens)."""
        return len(self.regions)

    @property
    def n_tokens(self) -> int:
        """Number of tokens: nodes, then regions, then the class token."""
        return self.n_nodes + self.n_regions + 1

    @property
    def region_centroids(self) -> np.ndarray:
        """Mean position of each region's nodes, shape (n_regions, 3), metres."""
        return np.stack([self.positions[list(r)].mean(0) for r in self.regions])

    def index(self, name: str) -> int:
        """Index of a node by name (any case, decoration stripped)."""
        key = clean_name(name)
        if key not in self._index:
            raise KeyError(f"{name!r} is not a node of topology {self.name!r}.")
        return self._index[key]

    def __repr__(self) -> str:
        return (
            f"UnifiedTopology(name={self.name!r}, n_nodes={self.n_nodes}, "
            f"n_regions={self.n_regions})"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, UnifiedTopology)
            and self.nodes == other.nodes
            and self.regions == other.regions
            and np.array_equal(self.rank_coordinates, other.rank_coordinates)
            and np.allclose(self.positions, other.positions)
        )

    def __hash__(self) -> int:
        return hash((self.nodes, self.regions))

    def to_config(self) -> dict[str, Any]:
        """JSON-ready description (enough to rebuild the topology exactly)."""
        return {
            "name": self.name,
            "nodes": list(self.nodes),
            "regions": [[self.nodes[i] for i in r] for r in self.regions],
            "positions": np.round(self.positions, 9).tolist(),
            "rank_coordinates": self.rank_coordinates.tolist(),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> UnifiedTopology:
        """Rebuild a topology written by :meth:`to_config`."""
        default = cls.default()
        if config["name"] == default.name and tuple(config["nodes"]) == default.nodes:
            return default
        return cls(
            config["nodes"],
            config["regions"],
            positions=np.asarray(config["positions"]),
            rank_source=np.asarray(config["rank_coordinates"]),
            name=config["name"],
        )

    # -- attention mask ------------------------------------------------------------------------

    def attention_mask(self, present: np.ndarray | None = None) -> np.ndarray:
        """The hierarchy attention mask over [nodes, regions, class token]; True = blocked.

        Rules (the reference's): node<->node, region<->region, a region<->its own nodes and the
        class token<->everything are allowed; a node<->another region's token is blocked.

        Parameters
        ----------
        present : ndarray of bool, shape (batch, n_nodes) | None
            Which nodes each sample has. When given, absent nodes are also blocked as keys
            (no token reads from them), and the result gets a leading batch axis.

        Returns
        -------
        ndarray of bool
            Shape (n_tokens, n_tokens), or (batch, n_tokens, n_tokens) with ``present``.
        """
        n, r = self.n_nodes, self.n_regions
        mask = np.zeros((self.n_tokens, self.n_tokens), dtype=bool)
        own = self.region_of[:, None] == np.arange(r)[None, :]
        mask[:n, n : n + r] = ~own
        mask[n : n + r, :n] = ~own.T
        if present is None:
            return mask
        present = np.asarray(present, dtype=bool)
        if present.ndim != 2 or present.shape[1] != n:
            raise ValueError(f"present must have shape (batch, {n}), got {present.shape}.")
        batch = np.broadcast_to(mask, (len(present), *mask.shape)).copy()
        batch[:, :, :n] |= ~present[:, None, :]
        return batch

    # -- channel mapping -----------------------------------------------------------------------

    def map_channels(
        self,
        names: Sequence[str],
        positions: Mapping[str, Any] | str | Path | Any | None = None,
        *,
        types: Sequence[str] | None = None,
        tolerance_mm: float = DEFAULT_TOLERANCE_MM,
        on_unknown: Literal["raise", "drop"] = "raise",
        bipolar: Literal["exclude", "midpoint", "raise"] = "exclude",
    ) -> ChannelMapping:
        """Decide which input channel feeds which node.

        Parameters
        ----------
        names : sequence of str
            Channel names as the file spells them (``"EEG Fp1-REF"``, ``"Fc5."``, ``"T3"``).
        positions : mapping | mne.channels.DigMontage | str | path-like | None
            Electrode positions (metres, head frame): a mapping name -> xyz, a montage (for
            instance ``raw.get_montage()``), the name of an MNE built-in montage, or a montage
            file MNE reads. Used for channels that are not nodes; names without one fall back
            to MNE's 10-05 template. A reference-like name (``A1``) given a position here is
            taken as a scalp electrode (BioSemi caps name their electrodes ``A1``...``B32``).
        types : sequence of str | None
            MNE channel types, one per name; channels whose type is not ``"eeg"`` are excluded.
        tolerance_mm : float
            A channel matched by position feeds its nearest node only within this distance.
        on_unknown : {"raise", "drop"}
            What to do with names that are neither nodes, aliases nor positioned electrodes.
        bipolar : {"exclude", "midpoint", "raise"}
            Bipolar derivations (``FP1-F7``): list as excluded, map to the node nearest the
            midpoint of their two electrodes, or raise.

        Returns
        -------
        ChannelMapping
            Per-channel decisions, excluded channels and the ``present`` vector.

        Notes
        -----
        Conflicts: a channel feeds only its nearest node. When several channels land on one
        node, a name or alias match beats a position match, a nearer position match beats a
        farther one, and an earlier channel beats a later one; the losers feed no node and
        their ``reason`` names the winner.
        """
        names = list(names)
        _check_option("on_unknown", on_unknown, ("raise", "drop"))
        _check_option("bipolar", bipolar, ("exclude", "midpoint", "raise"))
        if not tolerance_mm > 0:
            raise ValueError(f"tolerance_mm must be positive, got {tolerance_mm}.")
        if types is not None and len(types) != len(names):
            raise ValueError(f"types has {len(types)} entries but names has {len(names)}.")
        known = _resolve_positions(positions)

        excluded: list[ExcludedChannel] = []
        candidates: list[tuple[int, str, int | None, str | None, float | None, str | None]] = []
        unknown: list[str] = []
        bipolars: list[str] = []
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
                bipolars.append(raw)
                excluded.append(
                    ExcludedChannel(
                        i,
                        raw,
                        f"{parsed.detail}; map it with bipolar='midpoint' (--bipolar midpoint)",
                    )
                )
            else:
                candidates.append((i, raw, *self._match(parsed, known, tolerance_mm)))
                if candidates[-1][5] == "unknown":
                    unknown.append(raw)
        if bipolars and bipolar == "raise":
            raise ChannelMappingError(
                f"Bipolar derivations found: {', '.join(bipolars)}. Pass bipolar='midpoint' "
                "(--bipolar midpoint) to map each to the node nearest the midpoint of its "
                "electrodes, or bipolar='exclude' (--bipolar exclude) to leave them out."
            )
        if unknown and on_unknown == "raise":
            raise ChannelMappingError(
                f"Unknown channel names with no position: {', '.join(map(repr, unknown))}. "
                "Rename them to 10-05 names, give their positions (a montage name or file), or "
                "leave them out with on_unknown='drop' (--on-unknown drop on the command line)."
            )
        return self._resolve_conflicts(names, candidates, excluded)

    def _match(
        self, parsed: ParsedName, known: Mapping[str, np.ndarray], tolerance_mm: float
    ) -> tuple[int | None, str | None, float | None, str | None]:
        """Node, method, distance and failure reason for one electrode or bipolar channel."""
        if parsed.kind == "electrode" and parsed.electrodes[0] in self._index:
            method = "alias" if parsed.aliased else "name"
            return self._index[parsed.electrodes[0]], method, None, None
        keys = [clean_name(parsed.raw)] if parsed.kind == "electrode" else []
        points = []
        for electrode in parsed.electrodes:
            pos = next((known[k] for k in (*keys, electrode) if k in known), None)
            points.append(pos if pos is not None else template_position(electrode))
        if any(p is None for p in points):
            return None, None, None, "unknown"
        point = np.mean(points, axis=0)
        distances = np.linalg.norm(self.positions - point, axis=1) * 1000.0
        node = int(np.argmin(distances))
        if distances[node] > tolerance_mm:
            return (
                None,
                None,
                float(distances[node]),
                (
                    f"nearest node {self.nodes[node]} is {distances[node]:.1f} mm away "
                    f"(tolerance {tolerance_mm:g} mm)"
                ),
            )
        return node, "position", float(distances[node]), None

    def _resolve_conflicts(
        self,
        names: list[str],
        candidates: list[tuple[int, str, int | None, str | None, float | None, str | None]],
        excluded: list[ExcludedChannel],
    ) -> ChannelMapping:
        source = np.full(self.n_nodes, -1, dtype=np.int64)
        ranked = sorted(
            (c for c in candidates if c[2] is not None),
            key=lambda c: (c[3] == "position", c[4], c[0]),
        )
        for index, _, node, *_ in ranked:
            if source[node] < 0:
                source[node] = index
        matches = []
        for index, raw, node, method, distance, reason in candidates:
            if reason == "unknown":
                reason = "unknown name with no position"
            if node is not None and source[node] != index:
                winner = names[source[node]]
                reason = f"node {self.nodes[node]} is already fed by {winner!r}"
                node, method = None, None
            matches.append(
                ChannelMatch(
                    index=index,
                    name=raw,
                    node=node,
                    node_name=None if node is None else self.nodes[node],
                    region=None if node is None else int(self.region_of[node]),
                    method=method,  # type: ignore[arg-type]
                    distance_mm=distance if node is not None else None,
                    reason=reason,
                )
            )
        source.setflags(write=False)
        mapping = ChannelMapping(self, tuple(matches), tuple(excluded), source)
        if not mapping.n_present:
            bipolars = [e.name for e in excluded if e.reason.startswith("bipolar derivation")]
            hint = (
                f"The channels are bipolar derivations ({', '.join(bipolars[:3])}, ...): map them "
                "with bipolar='midpoint' (--bipolar midpoint)."
                if bipolars
                else "Check the channel names or give electrode positions."
            )
            raise ChannelMappingError(
                f"None of the {len(names)} channels maps onto topology {self.name!r} "
                f"(excluded: {len(excluded)}, unmapped: {len(matches)}). {hint}"
            )
        logger.info("Mapped %d of %d channels onto %d nodes", len(ranked), len(names), self.n_nodes)
        return mapping


def _check_option(name: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}.")


def _resolve_positions(positions: Any) -> dict[str, np.ndarray]:
    """Normalise any position source to ``{UPPER-CASE NAME: xyz (m, head frame)}``."""
    if positions is None:
        return {}
    if isinstance(positions, (str, Path)):
        from mmm_eeg.io.montage import load_montage

        positions = load_montage(positions)
    if isinstance(positions, Mapping):
        out = {}
        for key, value in positions.items():
            xyz = np.asarray(value, dtype=float)
            if xyz.shape != (3,):
                raise UserInputError(f"Position of {key!r} must be 3 numbers, got {value!r}.")
            if np.all(np.isfinite(xyz)):
                out[clean_name(key)] = xyz
        return out
    return montage_positions(positions)


@cache
def _default_topology() -> UnifiedTopology:
    table = resources.files("mmm_eeg") / "data" / "seed62_coordinates.csv"
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    nodes = [row["node"] for row in rows]
    region_ids = [int(row["region"]) for row in rows]
    regions = [[n for n, r in zip(nodes, region_ids, strict=True) if r == k] for k in range(17)]
    rank_source = np.array([[float(row[k]) for k in ("x_mm", "y_mm", "z_mm")] for row in rows])
    return UnifiedTopology(nodes, regions, rank_source=rank_source, name="seed62")
