import pytest

from app.services.phones import format_phone, normalise_phone


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("0612345678", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("(+33) 1 42 68 53 00", "+33142685300"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+1 650-253-0000", "+16502530000"),
    ],
)
def test_valid_numbers_become_e164(typed, expected):
    assert normalise_phone(typed) == expected


def test_default_region_reads_national_numbers():
    assert normalise_phone("020 7946 0958", default_region="GB") == "+442079460958"
    assert normalise_phone("020 7946 0958") is None  # not a valid French number


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "12345",
        "06 12 34 56 7",
        "+33 6 12 34 56 78 90",
        "+99 123 456 789",
        "not a phone",
        "06 12 34 56 78 ext. 12",
        "+" + "1" * 300,
        None,
        612345678,
    ],
)
def test_invalid_input_gives_none_never_an_exception(typed):
    assert normalise_phone(typed) is None


def test_format_phone_for_display():
    assert format_phone("+33612345678") == "+33 6 12 34 56 78"
    assert format_phone("+442079460958") == "+44 20 7946 0958"
    assert format_phone("") == "" and format_phone(None) == ""
    assert format_phone("junk") == "junk"
