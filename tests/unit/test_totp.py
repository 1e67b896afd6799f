import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from app.services.codes import ALPHABET
from app.services.totp import (
    hash_recovery_code,
    match_recovery_code,
    new_recovery_codes,
    new_secret,
    normalise_recovery_code,
    provisioning_uri,
    verify_totp,
)
from tests.checkers import oathtool

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
STEP = int(NOW.timestamp()) // 30


def test_new_secret_is_160_bits_of_base32():
    secret = new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20
    assert len({new_secret() for _ in range(100)}) == 100


def test_provisioning_uri_names_the_issuer_and_account():
    uri = provisioning_uri(SECRET, "ada@example.org")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert parsed.path == "/Guichet:ada%40example.org"
    query = parse_qs(parsed.query)
    assert query["secret"] == [SECRET] and query["issuer"] == ["Guichet"]


def test_code_from_oathtool_is_accepted_at_that_time():
    assert (
        verify_totp(SECRET, oathtool(SECRET, NOW), now=NOW, last_used_step=None) == STEP
    )


def test_fresh_secret_agrees_with_oathtool():
    secret = new_secret()
    assert (
        verify_totp(secret, oathtool(secret, NOW), now=NOW, last_used_step=None) == STEP
    )


def test_spaces_in_the_code_are_ignored():
    code = oathtool(SECRET, NOW)
    assert (
        verify_totp(SECRET, f" {code[:3]} {code[3:]}\n", now=NOW, last_used_step=None)
        == STEP
    )


@pytest.mark.parametrize("offset", [-1, 1])
def test_one_step_either_side_is_accepted(offset):
    code = oathtool(SECRET, NOW + timedelta(seconds=30 * offset))
    assert verify_totp(SECRET, code, now=NOW, last_used_step=None) == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_two_steps_away_is_refused(offset):
    code = oathtool(SECRET, NOW + timedelta(seconds=30 * offset))
    assert verify_totp(SECRET, code, now=NOW, last_used_step=None) is None


def test_window_zero_accepts_only_the_current_step():
    old = oathtool(SECRET, NOW - timedelta(seconds=30))
    assert verify_totp(SECRET, old, now=NOW, last_used_step=None, window=0) is None


def test_same_step_cannot_be_used_twice():
    code = oathtool(SECRET, NOW)
    step = verify_totp(SECRET, code, now=NOW, last_used_step=None)
    assert step == STEP
    assert (
        verify_totp(SECRET, code, now=NOW + timedelta(seconds=5), last_used_step=step)
        is None
    )


def test_older_step_refused_after_a_newer_one_was_used():
    previous = oathtool(SECRET, NOW - timedelta(seconds=30))
    assert verify_totp(SECRET, previous, now=NOW, last_used_step=STEP) is None


def test_next_step_accepted_after_the_current_one():
    later = NOW + timedelta(seconds=30)
    assert (
        verify_totp(SECRET, oathtool(SECRET, later), now=later, last_used_step=STEP)
        == STEP + 1
    )


def test_naive_now_is_read_as_utc():
    naive = NOW.replace(tzinfo=None)
    assert (
        verify_totp(SECRET, oathtool(SECRET, NOW), now=naive, last_used_step=None)
        == STEP
    )


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "      ",
        "abcdef",
        "12345",
        "1234567",
        "12-34-56",
        "١٢٣٤٥٦",
        "１２３４５６",
        "12345x",
        "9" * 10_000,
        None,
        123456,
        b"123456",
    ],
)
def test_garbage_gives_none_never_an_exception(garbage):
    assert verify_totp(SECRET, garbage, now=NOW, last_used_step=None) is None


def test_recovery_codes_are_unique_readable_and_unambiguous():
    codes = new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(rf"[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}", code)
    assert new_recovery_codes(3) != new_recovery_codes(3)


def test_recovery_code_normalisation():
    assert normalise_recovery_code(" k7qxm 4ht2p ") == "K7QXM-4HT2P"
    assert normalise_recovery_code("K7QXM4HT2P") == "K7QXM-4HT2P"
    for bad in ["", "K7QXM-4HT2", "K7QXM-4HT2PP", "K7QXM-4HT2O", "K7QXM-4HT21", None]:
        assert normalise_recovery_code(bad) == ""


def test_hash_is_sha256_of_the_normalised_code():
    expected = hashlib.sha256(b"K7QXM-4HT2P").hexdigest()
    assert hash_recovery_code("k7qxm4ht2p") == expected
    with pytest.raises(ValueError):
        hash_recovery_code("not a code")


def test_a_recovery_code_matches_once():
    codes = new_recovery_codes()
    stored = [hash_recovery_code(code) for code in codes]
    typed = codes[3].lower().replace("-", " ")
    matched = match_recovery_code(typed, stored)
    assert matched == stored[3]
    stored.remove(matched)  # what the account service does on use
    assert match_recovery_code(typed, stored) is None


@pytest.mark.parametrize("typed", ["", "ZZZZZ-ZZZZZ", "garbage", None, "é" * 10])
def test_unknown_recovery_code_matches_nothing(typed):
    stored = [hash_recovery_code(code) for code in new_recovery_codes()]
    assert match_recovery_code(typed, stored) is None
