"""Classification metrics (scikit-learn): one fold, and balanced accuracy per subject."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)


def classification_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, n_classes: int
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, AUROC (two classes) and the confusion matrix."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(probabilities).argmax(axis=1)
    labels = list(range(n_classes))
    out: dict[str, Any] = {
        "n_windows": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "auroc": None,
    }
    if n_classes == 2 and len(np.unique(y_true)) == 2:
        out["auroc"] = float(roc_auc_score(y_true, np.asarray(probabilities)[:, 1]))
    return out


def per_subject_balanced_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray
) -> dict[str, float]:
    """Balanced accuracy of each subject's windows, keyed by subject (sorted)."""
    y_true, y_pred, subjects = (np.asarray(a) for a in (y_true, y_pred, subjects))
    return {
        str(s): float(balanced_accuracy_score(y_true[subjects == s], y_pred[subjects == s]))
        for s in np.unique(subjects.astype(str))
    }


def balanced_accuracy(confusion: Any) -> float:
    """Balanced accuracy from a confusion matrix (rows: true class), as scikit-learn defines it:
    the mean recall over the classes present in the truth (absent ones are left out)."""
    confusion = np.asarray(confusion.cpu() if hasattr(confusion, "cpu") else confusion, float)
    support = confusion.sum(axis=1)
    present = support > 0
    return float((np.diag(confusion)[present] / support[present]).mean()) if present.any() else 0.0
