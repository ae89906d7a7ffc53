"""Channel-name parsing: decorations, aliases, references, bipolar and non-EEG channels."""

import pytest

from mmm_eeg.channels import clean_name, parse_channel_name


@pytest.mark.parametrize(
    ("raw", "electrode"),
    [
        ("Fp1", "FP1"),
        ("FP1", "FP1"),
        ("fp1 ", "FP1"),
        ("EEG Fp1", "FP1"),
        ("EEG FP1-REF", "FP1"),
        ("EEG FP1-LE", "FP1"),
        ("C3-A2", "C3"),
        ("Fc5.", "FC5"),
        ("Iz..", "IZ"),
        ("T10.", "T10"),
        ("POL Cz", "CZ"),
    ],
)
def test_decorated_names_give_the_electrode(raw, electrode):
    parsed = parse_channel_name(raw)
    assert parsed.kind == "electrode"
    assert parsed.electrodes == (electrode,)
    assert not parsed.aliased


@pytest.mark.parametrize(
    ("raw", "new"), [("T3", "T7"), ("EEG T4", "T8"), ("t5", "P7"), ("T6-REF", "P8"), ("O9", "I1")]
)
def test_old_names_resolve_to_10_05(raw, new):
    parsed = parse_channel_name(raw)
    assert parsed.electrodes == (new,)
    assert parsed.aliased


@pytest.mark.parametrize(
    "raw",
    ["ECG ECG", "EKG", "EOG left", "HEOG", "EMG chin", "STI 014", "Status", "Right AUX",
     "EDF Annotations", "Marker0", "TRIGGER", "Resp", "SpO2", "Photic",
     # TUH spells its auxiliary channels like electrodes against a reference
     "EEG EKG1-REF", "PHOTIC-REF", "EMG-REF", "EEG LOC-REF", "EEG ROC-LE"],
)  # fmt: skip
def test_non_eeg_channels(raw):
    assert parse_channel_name(raw).kind == "non-eeg"


@pytest.mark.parametrize("raw", ["A1", "EEG A2-A1", "M2", "A2-A1", "REF"])
def test_reference_channels(raw):
    assert parse_channel_name(raw).kind == "reference"


def test_bipolar_derivation_keeps_both_electrodes():
    parsed = parse_channel_name("EEG FP1-F7")
    assert parsed.kind == "bipolar"
    assert parsed.electrodes == ("FP1", "F7")
    parsed = parse_channel_name("F7-T3")
    assert parsed.electrodes == ("F7", "T7") and parsed.aliased


def test_clean_name_strips_only_decoration():
    assert clean_name("  Cp5. ") == "CP5"
    assert clean_name("Fcz.") == "FCZ"


def test_rejects_non_strings():
    with pytest.raises(TypeError, match="must be str"):
        parse_channel_name(3)
