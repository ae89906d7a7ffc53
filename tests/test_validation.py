"""The shared argument checks: what they accept, what they say when they refuse."""

import math

import pytest

from mmm_eeg.errors import UserInputError
from mmm_eeg.validation import check_option, check_range, check_type


def test_check_option():
    assert check_option("mode", "mix", ("cycle", "mix")) == "mix"
    with pytest.raises(UserInputError, match="'mode' parameter: 'both'") as info:
        check_option("mode", "both", ("cycle", "mix"), extra="See MaskSchedule.")
    assert str(info.value) == (
        "Invalid value for the 'mode' parameter: 'both'. Allowed values: 'cycle', 'mix'. "
        "See MaskSchedule."
    )
    assert info.value.parameter == "mode"


@pytest.mark.parametrize(
    ("value", "kwargs", "ok"),
    [
        (0, {"low": 0}, True),
        (0, {"low": 0, "low_open": True}, False),
        (1.0, {"low": 0, "high": 1}, True),
        (1.5, {"low": 0, "high": 1}, False),
        (-0.1, {"high": 1}, True),
        (math.nan, {"low": 0}, False),
    ],
)
def test_check_range(value, kwargs, ok):
    if ok:
        assert check_range("x", value, **kwargs) == value
    else:
        with pytest.raises(UserInputError, match="'x' parameter") as info:
            check_range("x", value, **kwargs)
        assert info.value.parameter == "x"


def test_check_range_names_the_bound():
    with pytest.raises(UserInputError, match=r"it must be in \(0, 1\]"):
        check_range("layer_decay", 0, low=0, high=1, low_open=True)
    with pytest.raises(UserInputError, match="it must be >= 1"):
        check_range("depth", 0, low=1)


def test_check_type():
    assert check_type("n", 3, int) == 3
    with pytest.raises(UserInputError, match="'n' parameter must be int or float, got str"):
        check_type("n", "3", (int, float))
