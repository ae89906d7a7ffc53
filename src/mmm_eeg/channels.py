"""Channel names as real EEG files spell them: parsing, aliases and non-EEG detection.

Pure string functions; :mod:`mmm_eeg.topology` uses them to map channels onto nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: Old 10-20 names and other common synonyms, mapped to their 10-05 name (upper case).
ALIASES: dict[str, str] = {
    "T3": "T7",
    "T4": "T8",
    "T5": "P7",
    "T6": "P8",
    # Oostenveld & Praamstra (2001) give I1/I2 the synonyms O9/O10.
    "O9": "I1",
    "O10": "I2",
}

#: Electrodes used as references (ear lobes, mastoids); never fed to a node.
REFERENCE_ELECTRODES = frozenset({"A1", "A2", "M1", "M2", "LM", "RM", "REF", "GND", "COM"})

#: Second parts of ``X-Y`` names that denote a referential (not bipolar) recording.
REFERENCE_SUFFIXES = frozenset(
    {"REF", "LE", "RE", "AR", "AVG", "AV", "CAR", "A1", "A2", "M1", "M2", "A1A2", "M1M2", "LM"}
)

#: Channel-type prefixes (``"EEG Fp1"``, ``"ECG ECG"``) and the types they announce.
_TYPE_PREFIX = re.compile(r"^(EEG|ECG|EKG|EOG|EMG|RESP|MEG|POL)[\s_:]+(.+)$")

#: Whole names (upper case, decoration removed) that are never scalp EEG.
_NON_EEG = re.compile(
    r"^(?:"
    r"ECG\w*|EKG\w*|[HV]?EOG\w*|LOC|ROC|EMG\w*|CHIN\w*|RESP\w*|SPO2|SAO2|PULSE|PLETH\w*|HR|IBI|"
    r"BURSTS|SUPPR|PHOTIC\w*|STI\w*(?: \d+)?|STATUS|TRIG\w*|TRIGGER|MARKER\w*|EVENT\w*|"
    r"EDF ANNOTATIONS|BDF ANNOTATIONS|ANNOTATIONS|TIMESTAMPS?|(?:RIGHT |LEFT )?AUX\w*|"
    r"X\d+|DC\d+|MISC\w*|ACC\w*|GYRO\w*|BATTERY|TEMP\w*"
    r")$"
)

ChannelKind = Literal["electrode", "reference", "bipolar", "non-eeg"]


@dataclass(frozen=True)
class ParsedName:
    """What a raw channel name denotes.

    Attributes
    ----------
    raw : str
        The name as given.
    kind : {"electrode", "reference", "bipolar", "non-eeg"}
        ``"electrode"``: one scalp electrode (possibly recorded against a reference);
        ``"reference"``: a reference electrode or reference derivation such as ``A2-A1``;
        ``"bipolar"``: a difference of two scalp electrodes such as ``FP1-F7``;
        ``"non-eeg"``: ECG, EOG, EMG, stimulus, auxiliary or annotation channels.
    electrodes : tuple of str
        Upper-case electrode names, aliases resolved: one for ``"electrode"``, two for
        ``"bipolar"``, none otherwise.
    aliased : bool
        True when an old name (``T3``) was replaced by its 10-05 name (``T7``).
    detail : str
        Why the name was classified so, for reports.
    """

    raw: str
    kind: ChannelKind
    electrodes: tuple[str, ...] = ()
    aliased: bool = False
    detail: str = ""


def clean_name(name: str) -> str:
    """Strip the decoration files add around an electrode name.

    Removes surrounding white space and PhysioNet's padding dots (``"Fc5."``, ``"Iz.."``),
    and returns the name in upper case.

    Parameters
    ----------
    name : str
        A channel name as read from a file.

    Returns
    -------
    str
        The cleaned, upper-case name.
    """
    return name.strip().rstrip(".").strip().upper()


def resolve_alias(name: str) -> tuple[str, bool]:
    """Return the 10-05 name for ``name`` (upper case) and whether an alias was used."""
    if name in ALIASES:
        return ALIASES[name], True
    return name, False


def parse_channel_name(name: str) -> ParsedName:
    """Classify one channel name and extract the electrode(s) it records.

    Handles type prefixes (``EEG Fp1``, ``ECG ECG``), reference suffixes (``FP1-REF``,
    ``FP1-LE``, ``C3-A2``), bipolar derivations (``FP1-F7``), dot padding, case and the
    old 10-20 names (T3/T4/T5/T6).

    Parameters
    ----------
    name : str
        A channel name as read from a file.

    Returns
    -------
    ParsedName
        The classification; electrode names are not checked against any topology here.
    """
    if not isinstance(name, str):
        raise TypeError(f"Channel names must be str, got {type(name).__name__}: {name!r}.")
    text = clean_name(name)
    if not text:
        return ParsedName(name, "non-eeg", detail="empty channel name")
    prefix = _TYPE_PREFIX.match(text)
    if prefix is not None:
        kind, text = prefix.group(1), clean_name(prefix.group(2))
        if kind not in ("EEG", "POL"):
            return ParsedName(name, "non-eeg", detail=f"{kind} channel")
    if _NON_EEG.match(text):
        return ParsedName(name, "non-eeg", detail=f"non-EEG channel name '{text}'")
    parts = [p.strip() for p in re.split(r"\s*-\s*", text) if p.strip()]
    if len(parts) == 2 and parts[0] in REFERENCE_ELECTRODES:
        return ParsedName(name, "reference", detail=f"reference derivation {'-'.join(parts)}")
    if len(parts) == 2 and (parts[1] in REFERENCE_SUFFIXES or parts[1].isdigit()):
        # "-REF"-style reference suffixes, and "-0"/"-1": MNE's renaming of duplicate names
        parts = parts[:1]
        if _NON_EEG.match(parts[0]):  # TUH's "EEG EKG1-REF", "PHOTIC-REF", "EMG-REF"
            return ParsedName(name, "non-eeg", detail=f"non-EEG channel name '{parts[0]}'")
    if len(parts) == 1:
        electrode, aliased = resolve_alias(parts[0])
        if electrode in REFERENCE_ELECTRODES:
            return ParsedName(name, "reference", detail=f"reference electrode {electrode}")
        return ParsedName(name, "electrode", (electrode,), aliased)
    if len(parts) == 2:
        (first, alias_a), (second, alias_b) = resolve_alias(parts[0]), resolve_alias(parts[1])
        return ParsedName(
            name,
            "bipolar",
            (first, second),
            alias_a or alias_b,
            detail=f"bipolar derivation {first}-{second}",
        )
    return ParsedName(name, "electrode", (text,), detail="unparsed name")
