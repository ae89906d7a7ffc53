"""Atomic file writes: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmm_eeg.errors import UserInputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    Readers never see a half-written file: on error the temporary file is removed and ``path``
    keeps its old content (or stays absent). The temporary name keeps the target's suffix, so
    writers that infer the format from it (matplotlib, numpy) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically (non-JSON values as ``str``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, default=str))


def check_output_folder(root: str | Path) -> Path:
    """Refuse an output folder containing a symbolic link that leads outside it.

    Jobs write many files below their output folder (and Lightning writes checkpoints and logs
    there); a link planted inside it (``plots -> /etc``) would redirect those writes. Checked
    once at the start of every job.
    """
    root = Path(root)
    if root.is_symlink():
        return root  # the user's own choice of where the folder lives
    if not root.exists():
        return root
    top = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(top):
                raise UserInputError(
                    f"Refusing to write into {root}: {entry} is a symbolic link to "
                    f"{os.readlink(entry)}, outside the folder. Remove the link or choose another "
                    "output folder."
                )
    return root
