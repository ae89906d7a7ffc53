"""Where the example recordings and the released weights live; built-in example montages."""

from __future__ import annotations

import os
from pathlib import Path

from mmm_eeg.errors import UserInputError

#: Channel lists of three montages of different size, for examples without any file.
EXAMPLE_MONTAGES: dict[str, list[str]] = {
    "clinical 10-20": [
        f"EEG {n}" for n in "Fp1 Fp2 F3 F4 F7 F8 T3 T4 C3 C4 T5 T6 P3 P4 O1 O2 Fz Cz Pz".split()
    ]
    + ["EEG A2-A1", "ECG ECG"],
    "research 10-10": [
        f"{n}{'.' * max(0, 4 - len(n))}"
        for n in (
            "Fc5 Fc3 Fc1 Fcz Fc2 Fc4 Fc6 C5 C3 C1 Cz C2 C4 C6 Cp5 Cp3 Cp1 Cpz Cp2 Cp4 Cp6 Fp1 "
            "Fpz Fp2 Af7 Af3 Afz Af4 Af8 F7 F5 F3 F1 Fz F2 F4 F6 F8 Ft7 Ft8 T7 T8 T9 T10 Tp7 Tp8 "
            "P7 P5 P3 P1 Pz P2 P4 P6 P8 Po7 Po3 Poz Po4 Po8 O1 Oz O2 Iz"
        ).split()
    ],
    "Muse headband": ["TP9", "AF7", "AF8", "TP10", "Right AUX"],
}


def default_data_dir() -> Path:
    """The example recordings: ``$MMM_EEG_DATA``, else ``../shared/eeg`` from the working dir."""
    return Path(os.environ.get("MMM_EEG_DATA", Path.cwd().parent / "shared" / "eeg"))


def find_checkpoint(filename: str, directory: str | Path | None = None) -> Path:
    """The path of a checkpoint file (or model folder) by name; nothing is downloaded.

    Looked for in ``directory``, then ``$MMM_EEG_CHECKPOINTS``, then ``checkpoints/`` beside
    the example recordings (``../shared/checkpoints``).

    Raises
    ------
    UserInputError
        Naming every folder searched and how to point at the file.
    """
    folders = [Path(directory)] if directory is not None else []
    if os.environ.get("MMM_EEG_CHECKPOINTS"):
        folders.append(Path(os.environ["MMM_EEG_CHECKPOINTS"]))
    folders.append(default_data_dir().parent / "checkpoints")
    for folder in folders:
        if (folder / filename).exists():  # a file, or a save_pretrained folder
            return folder / filename
    raise UserInputError(
        f"{filename} not found in {', '.join(map(str, folders))}. Put it in one of these folders, "
        "set MMM_EEG_CHECKPOINTS to its folder, or pass its path as pretrained=PATH."
    )
