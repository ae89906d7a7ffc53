"""Window selection expressions for ``--select``: ``dataset in [eegmat, muse_n170] and ...``.

Grammar (no ``eval``): clauses joined by ``and``; each clause is ``COLUMN in [v1, v2, ...]``,
``COLUMN not in [...]``, ``COLUMN == v`` or ``COLUMN != v``. Values compare as strings.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from mmm_eeg.errors import UserInputError

_CLAUSE = re.compile(r"^\s*(\w+)\s+(not\s+in|in|==|!=)\s+(.+?)\s*$")


def select_windows(index: pd.DataFrame, expression: str | None) -> np.ndarray:
    """Indices of the windows of ``index`` that satisfy ``expression`` (all when None)."""
    keep = np.ones(len(index), dtype=bool)
    if not expression or not expression.strip():
        return np.flatnonzero(keep)
    for clause in re.split(r"\s+and\s+", expression.strip()):
        match = _CLAUSE.match(clause)
        if match is None:
            raise UserInputError(
                f"Cannot read selection clause {clause!r}; write e.g. "
                '"dataset in [eegmat, muse_n170] and label != rest".'
            )
        column, op, value = match.groups()
        if column not in index.columns:
            raise UserInputError(
                f"Selection names column {column!r}, which the corpus index lacks; "
                f"columns: {', '.join(index.columns)}."
            )
        values = index[column].astype(str).to_numpy()
        if "in" in op:
            if not (value.startswith("[") and value.endswith("]")):
                raise UserInputError(f"'{column} {op}' needs a list in brackets, got {value!r}.")
            items = [v.strip().strip("'\"") for v in value[1:-1].split(",") if v.strip()]
            hit = np.isin(values, items)
            keep &= ~hit if op.startswith("not") else hit
        else:
            item = value.strip().strip("'\"")
            keep &= (values == item) if op == "==" else (values != item)
    return np.flatnonzero(keep)
