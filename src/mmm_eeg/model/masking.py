"""Masking for pretraining (global random, regional) and channel dropout for fine-tuning.

Counts are ``round(ratio * n)`` clamped to ``[1, n - 1]`` so that something is hidden and
something stays visible. Edge cases: a sample with one present node has nothing masked (there
is nothing to reconstruct it from); regional masking of a sample whose present nodes all lie in
one region falls back to random masking of that region's nodes; a sample with no present node
is an error. Reproducible from a ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from mmm_eeg.model.choices import MASK_MODES, MaskMode
from mmm_eeg.validation import check_option, check_range

Strategy = Literal["random", "regional"]


def _check_present(present: torch.Tensor) -> torch.Tensor:
    present = present.to(torch.bool)
    if present.ndim != 2:
        raise ValueError(f"present must have shape (batch, n_nodes), got {tuple(present.shape)}.")
    if not present.any(dim=1).all():
        raise ValueError("A sample has no present node; masking needs at least one.")
    return present


def _pick(
    eligible: torch.Tensor, count: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Per row, choose ``count`` eligible positions uniformly at random."""
    scores = torch.rand(eligible.shape, generator=generator, device="cpu").to(eligible.device)
    scores = scores.masked_fill(~eligible, float("inf"))
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks < count[:, None]) & eligible


def _count(n: torch.Tensor, ratio: float) -> torch.Tensor:
    """round(ratio * n) clamped to [1, n - 1]; 0 where n < 2."""
    k = torch.round(ratio * n.to(torch.float64)).to(torch.long)
    return torch.where(n >= 2, k.clamp(min=1).minimum(n - 1), torch.zeros_like(n))


def random_mask(
    present: torch.Tensor, ratio: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Global random masking: hide ``ratio`` of each sample's present nodes.

    Parameters
    ----------
    present : Tensor of bool, shape (batch, n_nodes)
        Nodes each sample has.
    ratio : float
        Fraction of present nodes to hide, in (0, 1).
    generator : torch.Generator | None
        Source of randomness (CPU), for reproducibility.

    Returns
    -------
    Tensor of bool, shape (batch, n_nodes)
        True where a node is masked; only present nodes are ever masked.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}.")
    present = _check_present(present)
    return _pick(present, _count(present.sum(1), ratio), generator)


def regional_mask(
    present: torch.Tensor,
    region_of: torch.Tensor,
    ratio: float = 0.35,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Regional masking: hide every present node of ``ratio`` of the regions that have one.

    Parameters
    ----------
    present : Tensor of bool, shape (batch, n_nodes)
        Nodes each sample has.
    region_of : Tensor of int, shape (n_nodes,)
        Region index of each node (``UnifiedTopology.region_of``).
    ratio : float
        Fraction of a sample's non-empty regions to hide, in (0, 1).
    generator : torch.Generator | None
        Source of randomness (CPU), for reproducibility.

    Returns
    -------
    Tensor of bool, shape (batch, n_nodes)
        True where a node is masked. Regions are masked whole.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}.")
    present = _check_present(present)
    region_of = torch.as_tensor(region_of, device=present.device, dtype=torch.long)
    n_regions = int(region_of.max()) + 1
    members = region_of[None, :] == torch.arange(n_regions, device=present.device)[:, None]
    region_present = (present[:, None, :] & members[None]).any(dim=2)  # (batch, n_regions)
    n_present_regions = region_present.sum(1)
    chosen = _pick(region_present, _count(n_present_regions, ratio), generator)
    masked = chosen[:, region_of] & present
    single = n_present_regions == 1
    if single.any():
        masked[single] = random_mask(present[single], 0.5, generator)
    return masked


def channel_dropout(
    present: torch.Tensor,
    p: float,
    min_keep: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augmentation for fine-tuning: with probability ``p`` a sample loses some of its nodes.

    A selected sample keeps ``k`` of its ``n`` present nodes, ``k`` drawn uniformly from
    ``[min(min_keep, n), n]``, the kept nodes uniformly at random; so the classifier sees every
    montage size from ``min_keep`` nodes to the full one.

    Parameters
    ----------
    present : Tensor of bool, shape (batch, n_nodes)
        Nodes each sample has.
    p : float
        Probability that a sample is thinned, in [0, 1].
    min_keep : int
        Fewest nodes a thinned sample keeps (>= 1).
    generator : torch.Generator | None
        Source of randomness (CPU), for reproducibility.

    Returns
    -------
    Tensor of bool, shape (batch, n_nodes)
        The nodes each sample keeps (a subset of ``present``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}.")
    check_range("min_keep", min_keep, low=1)
    present = _check_present(present)
    n = present.sum(1).cpu()  # the draws come from a CPU generator
    low = n.clamp(max=min_keep)
    draw = torch.rand(len(n), generator=generator, dtype=torch.float64)
    keep = low + (draw * (n - low + 1)).floor().to(torch.long)
    thinned = torch.rand(len(n), generator=generator) < p
    return _pick(present, torch.where(thinned, keep, n).to(present.device), generator)


@dataclass(frozen=True)
class MaskSchedule:
    """Which masking strategy each epoch (or batch) uses.

    ``mode="cycle"`` is the paper's multi-stage schedule: in every cycle of ``cycle`` epochs, the
    first half uses global random masking and the second half regional masking. When training is
    shorter than one cycle, the cycle shrinks to the run's length (so a 10-epoch run does 5 + 5).
    ``mode="mix"`` draws the strategy per batch with probability ``regional_prob``.
    ``mode="random"`` and ``mode="regional"`` use one strategy throughout (the ablations'
    single-stage masking).

    Parameters
    ----------
    epochs : int
        Total epochs of the run.
    cycle : int
        Cycle length in epochs (the paper: 100).
    mode : {"cycle", "mix", "random", "regional"}
        Per-epoch cycle, per-batch mix, or one strategy only.
    random_ratio, regional_ratio : float
        Fractions for the two strategies (paper: 0.5 of channels, 0.35 of regions).
    regional_prob : float
        Probability of regional masking per batch in ``"mix"`` mode.
    """

    epochs: int
    cycle: int = 100
    mode: MaskMode = "cycle"
    random_ratio: float = 0.5
    regional_ratio: float = 0.35
    regional_prob: float = 0.5

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("cycle", self.cycle, low=2)
        check_option("mode", self.mode, MASK_MODES)

    @property
    def cycle_length(self) -> int:
        """The cycle actually used: ``cycle``, or the run's length when that is shorter."""
        return max(1, min(self.cycle, self.epochs))

    def strategy(self, epoch: int, generator: torch.Generator | None = None) -> Strategy:
        """Strategy for ``epoch`` (0-based); in ``"mix"`` mode a fresh draw per call (batch)."""
        if self.mode in ("random", "regional"):
            return self.mode  # type: ignore[return-value]
        if self.mode == "mix":
            draw = torch.rand((), generator=generator).item()
            return "regional" if draw < self.regional_prob else "random"
        position = epoch % self.cycle_length
        return "random" if position < (self.cycle_length + 1) // 2 else "regional"

    def mask(
        self,
        present: torch.Tensor,
        region_of: torch.Tensor,
        epoch: int,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, Strategy]:
        """Sample a mask for one batch; returns the mask and the strategy used."""
        strategy = self.strategy(epoch, generator)
        if strategy == "random":
            return random_mask(present, self.random_ratio, generator), strategy
        return regional_mask(present, region_of, self.regional_ratio, generator), strategy
