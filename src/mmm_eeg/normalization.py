"""Standardisation of DE features: per recording, per subject, fitted, or none.

DE values differ between people and sessions by more than between most conditions, so every
model reads standardised features. Two choices define the standardisation:

- ``by``: the group whose own statistics are used: ``"recording"``, ``"subject"`` (pooled over
  the subject's recordings) or ``"none"`` (features as computed). Per recording is transductive
  when a recording holds one condition (eegmat: rest *or* arithmetic per file): the condition's
  mean is subtracted away. Per subject needs a subject's data of every condition; for a new
  subject at inference, the statistics come from that subject's own (unlabelled) data.
  ``"fitted"``: one mean and std per node and band, fitted on the training windows
  (:meth:`Normalizer.fit`) and saved with the model (its ``FeatureSpec``), then used for new
  data without looking at it, as a scikit-learn ``StandardScaler`` is. The only choice when
  every subject (or recording) carries one label (a trait): standardising each by its own
  statistics would remove exactly what separates them.
- ``per``: ``"band"`` (one mean and std per band, over the present nodes: the reference's
  "gaussian" standardisation of SEED) or ``"node"`` (one per node and band, like a
  ``StandardScaler`` fitted on each subject).

A normalisation is written as one string: ``"subject"``, ``"subject-node"``, ``"recording"``,
``"recording-node"``, ``"fitted"``, ``"none"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from mmm_eeg.errors import UserInputError
from mmm_eeg.validation import check_option

#: A normalisation's name, as configs, the command line and ``Corpus.read`` spell it.
Normalization = Literal["recording", "subject", "none", "recording-node", "subject-node", "fitted"]
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
Group = Literal["recording", "subject", "none", "fitted"]
Per = Literal["band", "node"]


@dataclass(frozen=True)
class Normalizer:
    """How DE features are standardised; see the module docstring.

    Parameters
    ----------
    by : {"recording", "subject", "none", "fitted"}
        Whose statistics standardise a window (``"fitted"``: the training windows').
    per : {"band", "node"}
        One mean and std per band (over present nodes), or per node and band (always, when
        fitted).
    mean, std : ndarray, shape (n_nodes, n_bands) | None
        The fitted statistics (``by="fitted"``; :meth:`fit` sets them).
    """

    by: Group = "subject"
    per: Per = "band"
    mean: np.ndarray | None = field(default=None, compare=False, repr=False)
    std: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_option("by", self.by, ("recording", "subject", "none", "fitted"))
        check_option("per", self.per, ("band", "node"))
        if self.by == "fitted":
            object.__setattr__(self, "per", "node")
        if (self.mean is None) != (self.std is None) or (
            self.mean is not None and np.shape(self.mean) != np.shape(self.std)
        ):
            raise ValueError("mean and std must be given together, of one shape.")

    @classmethod
    def fit(cls, x: np.ndarray, present: np.ndarray) -> Normalizer:
        """Statistics per node and band of training windows (their present nodes only)."""
        return cls.from_moments(*node_moments(x, present))

    @classmethod
    def from_moments(cls, count: np.ndarray, total: np.ndarray, squares: np.ndarray) -> Normalizer:
        """The fitted normaliser of summed :func:`node_moments` (of chunks of windows)."""
        mean, std = cls("fitted").statistics(count, total, squares)
        return cls("fitted", "node", mean.astype(np.float32), std.astype(np.float32))

    def to_dict(self) -> dict[str, Any]:
        """The fitted statistics, JSON-ready (as a ``FeatureSpec`` stores them)."""
        if self.mean is None or self.std is None:
            raise ValueError("This normaliser holds no fitted statistics.")
        return {"mean": np.asarray(self.mean).tolist(), "std": np.asarray(self.std).tolist()}

    @classmethod
    def parse(cls, value: str | Normalizer) -> Normalizer:
        """A normaliser from its name (one of ``NORMALIZATIONS``)."""
        if isinstance(value, Normalizer):
            return value
        check_option("normalize", value, NORMALIZATIONS)
        by, _, per = value.partition("-")
        return cls(by, "node" if per else "band")  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.per == "band" or self.by in ("none", "fitted"):
            return self.by
        return f"{self.by}-node"

    def fit_transform(
        self, x: np.ndarray, present: np.ndarray, groups: np.ndarray | None = None
    ) -> np.ndarray:
        """Standardise windows with their own group's statistics (float32, absent nodes 0).

        Parameters
        ----------
        x : ndarray, shape (n_windows, n_nodes, n_bands)
            DE features on the topology.
        present : ndarray of bool, shape (n_windows, n_nodes)
            Nodes each window has.
        groups : ndarray, shape (n_windows,) | None
            The recording or subject of each window (by ``self.by``); None: one group.
            Fitted statistics ignore it.
        """
        x, present = np.asarray(x), np.asarray(present, dtype=bool)
        if x.ndim != 3 or present.shape != x.shape[:2]:
            raise ValueError(
                f"x must be (windows, nodes, bands) and present (windows, nodes); got "
                f"{x.shape} and {present.shape}."
            )
        groups = np.zeros(len(x), dtype=int) if groups is None else np.asarray(groups)
        if len(groups) != len(x):
            raise ValueError(f"groups has {len(groups)} entries for {len(x)} windows.")
        if self.by == "none":
            return np.where(present[..., None], x, 0.0).astype(np.float32)
        if self.by == "fitted":
            if self.mean is None or self.std is None:
                raise ValueError(
                    "normalize='fitted' needs statistics fitted on training windows "
                    "(Normalizer.fit, or a model's saved FeatureSpec)."
                )
            return standardize(x, present, self.mean, self.std)
        out = np.zeros(x.shape, dtype=np.float32)
        for g in np.unique(groups):
            mine = groups == g
            count, total, squares = node_moments(x[mine], present[mine])
            mean, std = self.statistics(count, total, squares)
            out[mine] = standardize(x[mine], present[mine], mean, std)
        return out

    def statistics(
        self, count: np.ndarray, total: np.ndarray, squares: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std from :func:`node_moments` of one group: (n_bands,) or (n_nodes, n_bands).

        A node or band without data, or with (near) zero spread, gets mean 0 and std 1.
        """
        if self.per == "band":
            count, total, squares = count.sum(0), total.sum(0), squares.sum(0)
        n = np.maximum(count, 1)[..., None] if self.per == "node" else max(count, 1)
        mean = total / n
        std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
        empty = (count == 0)[..., None] if self.per == "node" else np.full(mean.shape, count == 0)
        std = np.where(empty | ~np.isfinite(std) | (std <= 1e-8), 1.0, std)
        mean = np.where(empty | ~np.isfinite(mean), 0.0, mean)
        return mean, std


def check_label_varies(
    normalize: str | Normalizer,
    labels: np.ndarray,
    groups: dict,
    remedy: str = "normalize='fitted' (statistics fitted on the training windows and saved "
    "with the model) or 'none'",
) -> None:
    """Refuse per-subject (per-recording) standardisation when every subject (recording)
    carries one label: each group's own mean would remove the label itself.

    Parameters
    ----------
    normalize : str | Normalizer
        The standardisation chosen.
    labels : ndarray
        The label of each sample.
    groups : dict
        ``{"subject": array, "recording": array}``: each sample's group of each kind known
        (a kind not given is not checked).
    remedy : str
        What to use instead, in the caller's terms.
    """
    by = Normalizer.parse(normalize).by
    if by not in groups or len(labels) == 0:
        return
    members = np.asarray(groups[by])
    labels = np.asarray(labels)
    per_group = [len(np.unique(labels[members == g])) for g in np.unique(members)]
    if max(per_group) == 1 and len(np.unique(labels)) > 1:
        raise UserInputError(
            f"Every {by} here carries a single label, so standardising each {by} by its own "
            f"statistics (normalize={str(normalize)!r}) would subtract the label away. Use "
            f"{remedy}.",
            parameter="normalize",
        )


def node_moments(x: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows per node, and per node and band the sum and the sum of squares over windows.

    Sufficient statistics: moments of several recordings add, so a subject's statistics are
    pooled from its recordings' without reading them twice.
    """
    weight = np.asarray(present, dtype=np.float64)[..., None]
    values = np.where(weight > 0, np.asarray(x, dtype=np.float64), 0.0)
    return weight[..., 0].sum(0), values.sum(0), (values**2).sum(0)


def standardize(
    x: np.ndarray, present: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """``(x - mean) / std`` as float32, absent nodes 0; mean/std broadcast against x."""
    out = np.asarray(x, dtype=np.float32) - np.asarray(mean, dtype=np.float32)
    out /= np.asarray(std, dtype=np.float32)
    out[~np.asarray(present, dtype=bool)] = 0.0
    return out
