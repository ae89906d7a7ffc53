"""Shared fixtures: the real recordings in ../shared/eeg (or $MMM_EEG_DATA); the two tiers.

Tests that use a real-data fixture (directly or through another fixture) are marked
``realdata``; the rest form the fast tier (``make test-fast``: ``pytest -m "not realdata"``),
which needs no ``../shared``. ``make test`` runs both.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    return Path(os.environ.get("MMM_EEG_DATA", REPO.parent / "shared" / "eeg"))


def _require(path: Path) -> Path:
    """Return ``path``; when it is missing, fail under CI and skip elsewhere."""
    if not path.exists():
        message = f"real data missing: {path} (set MMM_EEG_DATA to the shared eeg folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


REAL_DATA_FIXTURES = {"eeg_data", "checkpoint_path", "reference_table"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="session")
def eeg_data() -> Path:
    """The folder of real recordings (eegmat/, eegmmidb/, muse_n170/)."""
    return _require(_data_root())


@pytest.fixture(scope="session")
def eegmat_file(eeg_data: Path) -> Path:
    return _require(eeg_data / "eegmat" / "Subject00_1.edf")


@pytest.fixture(scope="session")
def eegmmidb_file(eeg_data: Path) -> Path:
    return _require(eeg_data / "eegmmidb" / "S001" / "S001R01.edf")


@pytest.fixture(scope="session")
def muse_file(eeg_data: Path) -> Path:
    files = sorted((eeg_data / "muse_n170").rglob("*.csv"))
    return _require(files[0] if files else eeg_data / "muse_n170" / "missing.csv")


@pytest.fixture(scope="session")
def checkpoint_path() -> Path:
    """The authors' released encoder (../shared/checkpoints)."""
    return _require(_data_root().parent / "checkpoints" / "tuh_pretrained_encoder_base.pt")


@pytest.fixture(scope="session")
def reference_table() -> Path:
    return _require(_data_root().parent / "reference" / "seed62_coordinates.csv")
