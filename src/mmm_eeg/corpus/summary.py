"""What a corpus holds, per dataset: windows, hours, recordings, subjects, labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmm_eeg.corpus.reader import Corpus


def corpus_summary(corpus: Corpus) -> dict[str, Any]:
    """Windows, hours, recordings and subjects per dataset, and labels."""
    index, rec = corpus.index, corpus.recordings
    hop = corpus.config.step or corpus.config.window
    out: dict[str, Any] = {
        "path": str(corpus.path),
        "windows": len(corpus),
        "hours": round(len(corpus) * hop / 3600, 3),
        "recordings": len(rec),
        "window_s": corpus.config.window,
        "method": corpus.config.method,
        "dtype": corpus.meta["dtype"],
        "datasets": {},
    }
    for name, rows in index.groupby("dataset") if len(index) else []:
        present = corpus.present[np.asarray(rows.index)] if len(rows) <= 200_000 else None
        out["datasets"][name] = {
            "windows": len(rows),
            "recordings": int(rows["recording"].nunique()),
            "subjects": int(rows["subject"].nunique()),
            "labels": {str(k): int(v) for k, v in rows["label"].value_counts().items()},
            "mean_present_nodes": None
            if present is None
            else round(float(present.sum(1).mean()), 2),
        }
    return out
