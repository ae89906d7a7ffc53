"""Evaluation protocols: which windows train, validate and test in each fold.

Every protocol carves its validation set from the training side only (other subjects, or later
trials / windows of the training part), never from the test fold; the test fold is scored once.

- ``loso``: each subject is the test fold once; ``val_subjects`` of the others validate.
- ``subject-kfold``: K folds over subjects (shuffled with the seed).
- ``holdout``: explicit test subjects.
- ``seed`` / ``seed-iv``: the reference protocol, per subject and session: the first 9 (16)
  trials are the training side and the last 6 (8) test; the last 20 % of every training trial
  validates (a whole held-out trial would carry a single label).
- ``time-split``: within each recording, the first 80 % of windows train (its last eighth
  validates), the rest tests.
- ``within-subject``: ``time-split`` per subject, one fold each (the paper's own protocol, in
  which each subject's earlier data trains and its later data tests).
- ``time-blocked``: K contiguous blocks in time per recording; fold j tests block j of every
  recording, validates on the next block, trains on the rest; ``gap`` windows on each side of
  the test block are left out, so that no training window overlaps or touches a test window.
  Every test fold must hold every class (a recording whose classes come in long blocks would
  otherwise be scored on one class): a clear error says when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from mmm_eeg.errors import UserInputError
from mmm_eeg.io.recording import natural_key
from mmm_eeg.validation import check_option, check_range

if TYPE_CHECKING:  # pandas is imported where used: the command line starts faster
    import pandas as pd

#: Evaluation protocols (see :func:`make_folds`).
Protocol = Literal[
    "loso",
    "subject-kfold",
    "holdout",
    "seed",
    "seed-iv",
    "time-split",
    "within-subject",
    "time-blocked",
]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
SEED_SPLIT = {"seed": (9, 15), "seed-iv": (16, 24)}


@dataclass
class Fold:
    """Window indices (into the corpus) of one fold."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self, index: pd.DataFrame) -> dict[str, Any]:
        """Sizes and subjects of each part (for the results JSON)."""
        out: dict[str, Any] = {"name": self.name, **self.info}
        for part in ("train", "val", "test"):
            rows = getattr(self, part)
            out[f"{part}_windows"] = len(rows)
            subjects = set(index["subject"].to_numpy()[rows].astype(str))
            out[f"{part}_subjects"] = sorted(subjects, key=natural_key)
        return out


def make_folds(
    index: pd.DataFrame,
    rows: np.ndarray,
    protocol: str,
    test_subjects: list[str] | None = None,
    k: int = 5,
    val_subjects: int = 2,
    seed: int = 0,
    gap: int = 1,
    labels: np.ndarray | None = None,
) -> list[Fold]:
    """Folds of ``protocol`` over the windows ``rows`` of a corpus index.

    Parameters
    ----------
    index : DataFrame
        ``Corpus.index``.
    rows : ndarray
        Candidate windows (labelled, selected).
    protocol : str
        One of :data:`PROTOCOLS`.
    test_subjects : list of str | None
        For ``holdout`` (and to restrict ``loso`` to some test subjects).
    k : int
        Folds for ``subject-kfold``.
    val_subjects : int
        Subjects taken from the training side for validation (subject protocols).
    seed : int
        Seed for subject shuffling and validation picks.
    gap : int
        ``time-blocked``: windows left out on each side of a test block.
    labels : ndarray | None
        ``time-blocked``: class per corpus window, to check that every test fold holds every
        class (default: the index's ``label`` column).

    Returns
    -------
    list of Fold
    """
    check_option("protocol", protocol, PROTOCOLS)
    rows = np.asarray(rows)
    subjects = index["subject"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    if protocol in ("loso", "subject-kfold", "holdout"):
        present = sorted(set(subjects[rows]), key=natural_key)
        if len(present) < 3:
            raise UserInputError(
                f"Protocol {protocol!r} needs at least 3 subjects; the selection has "
                f"{len(present)}."
            )
        if protocol == "holdout":
            if not test_subjects:
                raise UserInputError(
                    "Protocol 'holdout' needs test_subjects.", parameter="test_subjects"
                )
            groups = [[str(s) for s in test_subjects]]
        elif protocol == "loso":
            groups = [[s] for s in (test_subjects or present)]
        else:
            order = rng.permutation(present)
            groups = [list(g) for g in np.array_split(order, min(k, len(present)))]
        unknown = sorted({s for g in groups for s in g} - set(present))
        if unknown:
            raise UserInputError(f"Test subjects {unknown} are not in the selection: {present}.")
        folds = []
        for g in groups:
            rest = [s for s in present if s not in g]
            picker = np.random.default_rng([seed, len(folds)])
            val = list(picker.choice(rest, min(val_subjects, len(rest) - 1), replace=False))
            part = {"test": g, "val": val, "train": [s for s in rest if s not in val]}
            picked = {
                name: rows[np.isin(subjects[rows], members)] for name, members in part.items()
            }
            folds.append(
                Fold(
                    f"test-{'+'.join(g)}",
                    picked["train"],
                    picked["val"],
                    picked["test"],
                    {"test_subjects": g, "val_subjects": sorted(val)},
                )
            )
        return folds
    if protocol in SEED_SPLIT:
        return _seed_folds(index, rows, protocol)
    if protocol == "within-subject":
        return [
            _time_split(index, rows[subjects[rows] == s], f"within-{s}")
            for s in sorted(set(subjects[rows]), key=natural_key)
        ]
    if protocol == "time-blocked":
        labels = index["label"].astype(str).to_numpy() if labels is None else np.asarray(labels)
        return _time_blocked(index, rows, k, gap, labels)
    return [_time_split(index, rows)]


def _seed_folds(index: pd.DataFrame, rows: np.ndarray, protocol: str) -> list[Fold]:
    if "trial" not in index.columns:
        raise UserInputError(
            f"Protocol {protocol!r} needs a 'trial' column in the corpus index (SEED corpora "
            "built by `mmm-eeg preprocess` from the official folders have one)."
        )
    n_train, n_total = SEED_SPLIT[protocol]
    import pandas as pd

    trial = pd.to_numeric(index["trial"].to_numpy()[rows], errors="coerce")
    source_file = index["recording"].astype(str).str.split("#").str[0].to_numpy()
    key = source_file[rows]  # one SEED file = one subject's session
    starts = index["start_s"].to_numpy()[rows]
    recordings = index["recording"].to_numpy()[rows]
    folds = []
    for session in sorted(set(key), key=natural_key):
        here = key == session
        training_side = here & (trial <= n_train)
        # Validation: the last 20 % of every training trial, so that every class is present
        # (one held-out trial has one label); the test trials are never touched.
        late = np.zeros(len(rows), dtype=bool)
        for rec in np.unique(recordings[training_side]):
            mine = np.flatnonzero(training_side & (recordings == rec))
            cut = np.quantile(starts[mine], 0.8)
            late[mine[starts[mine] >= cut]] = True
        test = rows[here & (trial > n_train) & (trial <= n_total)]
        folds.append(
            Fold(
                session,
                rows[training_side & ~late],
                rows[training_side & late],
                test,
                {
                    "train_trials": f"1-{n_train}",
                    "val": "last 20 % of each training trial",
                    "test_trials": f"{n_train + 1}-{n_total}",
                },
            )
        )
    return folds


def _time_split(index: pd.DataFrame, rows: np.ndarray, name: str = "time-split") -> Fold:
    recordings = index["recording"].to_numpy()[rows]
    train, val, test = [], [], []
    for rec in dict.fromkeys(recordings):  # first-seen order
        mine = rows[recordings == rec]
        mine = mine[np.argsort(index["start_s"].to_numpy()[mine], kind="stable")]
        cut = round(0.8 * len(mine))
        cut_val = round(0.7 * len(mine))
        train.append(mine[:cut_val])
        val.append(mine[cut_val:cut])
        test.append(mine[cut:])
    return Fold(
        name,
        *(np.concatenate(p) for p in (train, val, test)),
        {"train": "first 70 %", "val": "70-80 %", "test": "last 20 % of each recording"},
    )


def _time_blocked(
    index: pd.DataFrame, rows: np.ndarray, k: int, gap: int, labels: np.ndarray
) -> list[Fold]:
    if k < 2:
        raise UserInputError(f"time-blocked needs k >= 2 folds; got k={k}.")
    check_range("gap", gap, low=0)
    recordings = index["recording"].to_numpy()[rows]
    starts = index["start_s"].to_numpy()
    block = np.full(len(rows), -1)
    position = np.zeros(len(rows), dtype=int)
    for rec in dict.fromkeys(recordings):  # first-seen order
        mine = np.flatnonzero(recordings == rec)
        mine = mine[np.argsort(starts[rows[mine]], kind="stable")]
        if len(mine) < k * (2 * gap + 1):
            raise UserInputError(
                f"{rec}: {len(mine)} windows are too few for {k} time blocks with a gap of "
                f"{gap}; lower k or gap."
            )
        block[mine] = np.arange(len(mine)) * k // len(mine)
        position[mine] = np.arange(len(mine))
    folds = []
    for j in range(k):
        near = np.zeros(len(rows), dtype=bool)  # within `gap` windows of the test block
        for rec in dict.fromkeys(recordings):  # first-seen order
            mine = recordings == rec
            test_pos = position[mine & (block == j)]
            lo, hi = test_pos.min() - gap, test_pos.max() + gap
            near |= mine & (position >= lo) & (position <= hi) & (block != j)
        test = block == j
        val = (block == (j + 1) % k) & ~near
        train = ~test & ~val & ~near
        classes, held = set(labels[rows]), set(labels[rows[test]])
        if held != classes or len(held) < 2:
            raise UserInputError(
                f"time-blocked fold {j + 1} of {k} tests only {sorted(held)} of the classes "
                f"{sorted(classes)}: a balanced accuracy needs two classes in every test fold, "
                "and here the classes come in blocks longer than a fold. Use "
                "recordings that each hold every class, fewer folds, or a subject protocol."
            )
        folds.append(
            Fold(
                f"block-{j + 1}-of-{k}",
                rows[train],
                rows[val],
                rows[test],
                {
                    "test": f"block {j + 1} of {k} in time",
                    "val": f"block {(j + 1) % k + 1}",
                    "gap_windows": gap,
                },
            )
        )
    return folds
