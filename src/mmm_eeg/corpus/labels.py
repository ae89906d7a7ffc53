"""Class indices of a corpus's labelled windows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmm_eeg.errors import UserInputError


def label_targets(
    index: pd.DataFrame, rows: np.ndarray, names: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Class index of every window (-1 outside ``rows``, unlabelled or not in ``names``).

    Parameters
    ----------
    index : DataFrame
        A corpus's window index (``Corpus.index``), with its ``label`` column.
    rows : ndarray of int
        The windows whose labels count.
    names : sequence of str | None
        The class names in class-index order (a trained model's); None: the sorted labels
        found in ``rows``, which must be at least two.

    Returns
    -------
    targets : ndarray of int64, shape (n_windows,)
    names : list of str
    """
    labels = index["label"].to_numpy()
    found = sorted({str(v) for v in labels[rows] if v is not None and v == v})
    if names is None:
        if len(found) < 2:
            raise UserInputError(
                f"The selection holds {len(found)} label(s) {found}; need at least 2."
            )
        names = found
    lookup = {str(n): i for i, n in enumerate(names)}
    targets = np.full(len(labels), -1, dtype=np.int64)
    targets[rows] = [lookup.get(str(v), -1) if v is not None and v == v else -1
                     for v in labels[rows]]  # fmt: skip
    return targets, list(names)
