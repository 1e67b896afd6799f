"""Encrypted columns (app/models/encrypted.py) on their own: Fernet tokens, plain values left from
before encryption, several keys and their rotation."""
from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet

from app.models.encrypted import FieldCipher, fernet_key, is_encrypted

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_a_value_round_trips_and_is_never_stored_as_itself():
    cipher = FieldCipher(["key one"])
    first, second = cipher.encrypt(SECRET), cipher.encrypt(SECRET)
    assert first != second and SECRET not in first  # a fresh IV each time
    assert is_encrypted(first) and len(first) <= 255  # fits the column
    assert cipher.decrypt(first) == cipher.decrypt(second) == SECRET


def test_the_key_is_stretched_from_the_secret_given():
    assert fernet_key("key one") == fernet_key("key one") != fernet_key("key two")
    Fernet(fernet_key("short"))  # a valid Fernet key whatever the secret's length
    token = FieldCipher(["key one"]).encrypt(SECRET)
    assert Fernet(fernet_key("key one")).decrypt(token.encode()).decode() == SECRET


def test_a_plain_value_from_before_encryption_is_read_as_it_is():
    assert not is_encrypted(SECRET)
    assert FieldCipher(["key one"]).decrypt(SECRET) == SECRET


def test_a_token_no_key_opens_reads_as_none_and_is_logged(caplog):
    token = FieldCipher(["old key"]).encrypt(SECRET)
    with caplog.at_level(logging.ERROR):
        assert FieldCipher(["new key"]).decrypt(token) is None
    assert "FIELD_ENCRYPTION_KEYS" in caplog.text and SECRET not in caplog.text and token not in caplog.text


def test_every_key_decrypts_and_the_first_encrypts():
    old_token = FieldCipher(["old key"]).encrypt(SECRET)
    both = FieldCipher(["new key", "old key"])
    assert both.decrypt(old_token) == SECRET
    assert FieldCipher(["new key"]).decrypt(both.encrypt(SECRET)) == SECRET


def test_reencrypt_moves_tokens_to_the_first_key_and_encrypts_plain_values():
    both = FieldCipher(["new key", "old key"])
    new_only = FieldCipher(["new key"])
    rotated = both.reencrypt(FieldCipher(["old key"]).encrypt(SECRET))
    assert new_only.decrypt(rotated) == SECRET
    encrypted = both.reencrypt(SECRET)
    assert is_encrypted(encrypted) and new_only.decrypt(encrypted) == SECRET
    assert new_only.reencrypt(FieldCipher(["lost key"]).encrypt(SECRET)) is None


def test_at_least_one_key_is_needed():
    with pytest.raises(ValueError):
        FieldCipher([])
