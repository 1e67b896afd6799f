import hashlib
import re

import pytest

from app.services import codes
from app.services.codes import (
    ALPHABET,
    codes_equal,
    hash_code,
    new_invitation_code,
    new_order_code,
    new_six_digit_code,
    normalise_invitation_code,
    normalise_six_digit_code,
)

PEPPER = b"test-pepper"
CHARS = f"[{ALPHABET}]"


def test_alphabet_has_no_look_alikes():
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31
    assert all(c.isupper() or c.isdigit() for c in ALPHABET)


def test_order_code_format():
    for _ in range(200):
        assert re.fullmatch(rf"GCH-{CHARS}{{6}}", new_order_code())


def test_order_codes_are_random_but_not_unique_by_themselves():
    """31**6 ≈ 887 million: about a 5% chance of one repeat in 10 000 draws,
    so the orders table needs a unique constraint and a retry."""
    drawn = [new_order_code() for _ in range(10_000)]
    assert len(set(drawn)) >= 9_990


def test_invitation_code_format_and_uniqueness():
    drawn = [new_invitation_code() for _ in range(10_000)]
    assert all(re.fullmatch(rf"GCH-{CHARS}{{6}}-{CHARS}{{5}}", code) for code in drawn)
    assert len(set(drawn)) == 10_000
    assert set("".join(code[4:].replace("-", "") for code in drawn)) == set(ALPHABET)


@pytest.mark.parametrize(
    "typed",
    [
        "GCH-7F3K9Q-XY2AB",
        " gch-7f3k9q-xy2ab ",
        "GCH7F3K9QXY2AB",
        "gch 7f3k9q xy2ab",
        "7F3K9Q-XY2AB",
        "7f3k9qxy2ab",
        "GCH–7F3K9Q–XY2AB",
    ],
)
def test_normalise_invitation_code_tolerates_case_spaces_and_dashes(typed):
    assert normalise_invitation_code(typed) == "GCH-7F3K9Q-XY2AB"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "GCH-",
        "GCH-7F3K9Q-XY2A",
        "GCH-7F3K9Q-XY2ABC",
        "GCH-7F3K9O-XY2AB",
        "GCH-7F3K91-XY2AB",
        "GCH-7F3K9Q-XY2A!",
        "ABC-7F3K9Q-XY2AB",
        "7F3K9Q-XY2AB-GCH",
        "G" * 1000,
        None,
        42,
    ],
)
def test_normalise_invitation_code_rejects_malformed_input(typed):
    assert normalise_invitation_code(typed) is None


def test_generated_invitation_codes_survive_normalisation():
    for _ in range(100):
        code = new_invitation_code()
        assert normalise_invitation_code(code.lower().replace("-", " ")) == code


def test_hash_code_is_keyed_and_never_the_plaintext():
    code = "GCH-7F3K9Q-XY2AB"
    digest = hash_code(code, pepper=PEPPER)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hash_code(code, pepper=PEPPER.decode())
    assert digest != hash_code(code, pepper=b"other-pepper")
    assert digest != hashlib.sha256(code.encode()).hexdigest()
    assert code not in digest


def test_hash_code_refuses_an_empty_pepper():
    with pytest.raises(ValueError):
        hash_code("123456", pepper=b"")


def test_codes_equal():
    assert codes_equal("abc", "abc")
    assert not codes_equal("abc", "abd")
    assert not codes_equal("abc", "abcd")
    assert not codes_equal("é", "e")  # non-ASCII does not raise


def test_six_digit_codes():
    drawn = [new_six_digit_code() for _ in range(2_000)]
    assert all(re.fullmatch(r"[0-9]{6}", code) for code in drawn)
    assert len(set(drawn)) > 1_900


def test_six_digit_code_keeps_leading_zeros(monkeypatch):
    monkeypatch.setattr(codes.secrets, "randbelow", lambda upper: 42)
    assert new_six_digit_code() == "000042"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("123456", "123456"),
        (" 123 456 ", "123456"),
        ("123-456", "123456"),
        ("012345", "012345"),
        ("12345", None),
        ("1234567", None),
        ("12345a", None),
        ("١٢٣٤٥٦", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_six_digit_code(typed, expected):
    assert normalise_six_digit_code(typed) == expected
