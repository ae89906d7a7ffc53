"""The unified electrode topology and its hierarchy attention mask.

Every montage is read by one model through :class:`UnifiedTopology`: a fixed list of named
nodes (electrode sites) grouped into regions. :meth:`UnifiedTopology.map_channels` decides which
input channel feeds which node (the algorithm lives in :mod:`mmm_eeg.mapping`);
:meth:`UnifiedTopology.attention_mask` gives the reference's hierarchy mask over the
``n_nodes + n_regions + 1`` tokens.

Mask convention: **True = blocked** (as the reference, ``torch.nn.MultiheadAttention`` and
``torch.nn.Transformer`` use it). ``torch.nn.functional.scaled_dot_product_attention`` wants the
opposite (True = may attend): pass ``~mask`` there.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mmm_eeg.channels import clean_name, resolve_alias
from mmm_eeg.errors import UserInputError
from mmm_eeg.mapping import DEFAULT_TOLERANCE_MM, ChannelMapping, map_channels
from mmm_eeg.montage import template_position


def dense_rank(values: np.ndarray) -> np.ndarray:
    """Dense rank (0, 1, 2, ...) of each value; equal values share a rank.

    ``scipy.stats.rankdata(values, method="dense") - 1``, computed with numpy: the index of
    each value among the sorted distinct values (and no scipy.stats import at start-up).
    """
    return np.unique(np.asarray(values), return_inverse=True)[1].astype(np.int64).reshape(-1)


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

    def node_mask(self, names: Sequence[str]) -> np.ndarray:
        """Boolean mask over the nodes that ``names`` name (any case, decoration stripped, the
        old 10-20 names resolved: T5 is P7); an unknown name is a clear error."""
        keys = [
            clean_name(n) if clean_name(n) in self._index else resolve_alias(clean_name(n))[0]
            for n in names
        ]
        unknown = [n for n, k in zip(names, keys, strict=True) if k not in self._index]
        if unknown or not keys:
            raise UserInputError(
                f"{unknown or 'No names'} are not electrodes of the {self.name!r} topology; name "
                f"them as it does (e.g. {', '.join(self.nodes[:4])}).",
                parameter="channels",
            )
        mask = np.zeros(self.n_nodes, dtype=bool)
        mask[[self._index[k] for k in keys]] = True
        return mask

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
        return map_channels(
            self,
            names,
            positions,
            types=types,
            tolerance_mm=tolerance_mm,
            on_unknown=on_unknown,
            bipolar=bipolar,
        )


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
