"""Ticket keys and the signed QR payload (format version 1, see "QR payload format" in README.md).

A ticket's QR code carries its id and a prefix of its double-key digest, signed
with the server's Ed25519 key, so a gate scanner holding only the public key can
tell an authentic code from a forged one without a database. Whether the ticket
is still valid (not void, not used, owner's key not rotated) is the check-in
service's job.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

KEY_BYTES = 32
PAYLOAD_VERSION = 1
DOMAIN = b"GCH1"  # domain separation: this key signs nothing else with this prefix
DIGEST_PREFIX_BYTES = 16
SIGNATURE_BYTES = 64
_HEADER = struct.Struct(">BQ16s")  # version, ticket id (u64 big-endian), digest prefix
PAYLOAD_BYTES = _HEADER.size + SIGNATURE_BYTES  # 89
PAYLOAD_CHARS = -(-PAYLOAD_BYTES * 8 // 5)  # 143 base32 characters, no padding
_MAX_INPUT_CHARS = 512  # refuse to decode anything longer (cheap DoS guard)
_BASE32_TEXT = re.compile(r"[A-Z2-7]+")
# RFC 4648 base32 digits as the digits of int(text, 32): a payload decodes as one big integer.
_BASE32_AS_INT_DIGITS = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghijklmnopqrstuv")
_PAD_BITS = PAYLOAD_CHARS * 5 - PAYLOAD_BYTES * 8  # unused low bits of the last character

AUTHENTIC = "AUTHENTIC"
MALFORMED = "MALFORMED"
FORGED = "FORGED"


class PayloadError(ValueError):
    """A scanned text that is not a readable Guichet payload; `code` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ParsedPayload:
    version: int
    ticket_id: int
    digest_prefix: bytes
    signature: bytes
    signed_bytes: bytes


# --- ticket keys -----------------------------------------------------------

def make_user_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def make_purchase_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def double_key_digest(user_key: bytes, purchase_key: bytes) -> bytes:
    """SHA-256(user key ‖ purchase key): stored on the ticket instead of the user key."""
    if len(user_key) != KEY_BYTES or len(purchase_key) != KEY_BYTES:
        raise ValueError("user and purchase keys must be 32 bytes each")
    return hashlib.sha256(user_key + purchase_key).digest()


def digest_matches(parsed: ParsedPayload, digest: bytes) -> bool:
    """Whether a scanned payload was issued for a ticket with this (current) digest."""
    return hmac.compare_digest(parsed.digest_prefix, digest[:DIGEST_PREFIX_BYTES])


# --- signing keys ----------------------------------------------------------

def generate_private_key_pem() -> bytes:
    return _private_pem(Ed25519PrivateKey.generate())


def private_key_seed_b64(private_key: Ed25519PrivateKey) -> str:
    """The raw 32-byte seed as base64url: the short form TICKET_SIGNING_KEY accepts."""
    raw = private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@functools.lru_cache(maxsize=16)
def load_private_key(pem_or_raw: str | bytes) -> Ed25519PrivateKey:
    """Read TICKET_SIGNING_KEY: a PKCS#8 PEM, or a base64/base64url 32-byte seed.

    Cached, so callers may pass the configured string on every request.
    Error messages never repeat the key material.
    """
    text = pem_or_raw.decode("ascii", "replace") if isinstance(pem_or_raw, bytes) else pem_or_raw
    text = text.strip()
    if "-----BEGIN" in text:
        text = text.replace("\\n", "\n")  # a PEM squeezed onto one line in a .env file
        try:
            key = serialization.load_pem_private_key(text.encode("ascii", "replace"), None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError("ticket signing key: unreadable PEM private key") from None
        if isinstance(key, Ed25519PrivateKey):
            return key
        raise ValueError("ticket signing key: the PEM key is not an Ed25519 key")
    try:
        seed = base64.b64decode(_pad_b64(text).replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("ticket signing key: neither a PEM nor base64 text") from None
    if len(seed) != KEY_BYTES:
        raise ValueError("ticket signing key: the base64 seed must decode to 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """The SubjectPublicKeyInfo PEM served at /tickets/public-key.pem."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@functools.lru_cache(maxsize=16)
def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("unreadable PEM public key") from None
    if isinstance(key, Ed25519PublicKey):
        return key
    raise ValueError("the PEM public key is not an Ed25519 key")


def load_or_create_key_file(path: str | os.PathLike) -> Ed25519PrivateKey:
    """Development convenience: reuse the PEM at `path`, or create it (mode 0600).

    Production must set TICKET_SIGNING_KEY instead: a key made on one machine
    is unknown to the other web instances.
    """
    path = Path(path)
    try:
        return load_private_key(path.read_bytes())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = generate_private_key_pem()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return load_private_key(path.read_bytes())
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return load_private_key(pem)


# --- payload ---------------------------------------------------------------

def sign_payload(private_key: Ed25519PrivateKey, ticket_id: int, digest: bytes) -> str:
    """The QR text for a ticket: upper-case unpadded base32, QR alphanumeric mode."""
    if not 0 <= ticket_id < 2**64:
        raise ValueError("ticket id must fit an unsigned 64-bit integer")
    if len(digest) < DIGEST_PREFIX_BYTES:
        raise ValueError("digest is too short")
    header = _HEADER.pack(PAYLOAD_VERSION, ticket_id, digest[:DIGEST_PREFIX_BYTES])
    signature = private_key.sign(DOMAIN + header)
    return base64.b32encode(header + signature).decode("ascii").rstrip("=")


def parse_payload(text: str) -> ParsedPayload:
    """Decode a scanned payload; raises PayloadError (only) for anything unreadable.

    Case-insensitive and tolerant of surrounding whitespace, because keyboard
    wedge scanners and people type it. Only the canonical base32 spelling is
    accepted, so each ticket has exactly one valid text.
    """
    if not isinstance(text, str):
        raise PayloadError("malformed", "payload must be text")
    text = text.strip()
    if not text or len(text) > _MAX_INPUT_CHARS or not text.isascii():
        raise PayloadError("malformed", "payload is empty, too long or not ASCII")
    text = text.upper()
    if not _BASE32_TEXT.fullmatch(text):
        raise PayloadError("malformed", "payload is not unpadded base32")
    raw = _decode_payload_chars(text) if len(text) == PAYLOAD_CHARS else _decode_other_length(text)
    if raw[0] != PAYLOAD_VERSION:
        raise PayloadError("unsupported_version", f"unsupported payload version {raw[0]}")
    version, ticket_id, prefix = _HEADER.unpack_from(raw)
    return ParsedPayload(
        version=version,
        ticket_id=ticket_id,
        digest_prefix=prefix,
        signature=raw[_HEADER.size:],
        signed_bytes=DOMAIN + raw[: _HEADER.size],
    )


def _decode_payload_chars(text: str) -> bytes:
    """A payload-length text as bytes, in a few microseconds (base64.b32decode and the
    re-encoding that checked the spelling took most of a scan's parsing time). The unused low
    bits of the last character must be zero: each ticket has exactly one valid text."""
    value = int(text.translate(_BASE32_AS_INT_DIGITS), 32)
    if value & ((1 << _PAD_BITS) - 1):
        raise PayloadError("malformed", "payload is not canonical base32")
    return (value >> _PAD_BITS).to_bytes(PAYLOAD_BYTES, "big")


def _decode_other_length(text: str) -> bytes:
    """Any other length is refused, after reading its version byte when there is one (a newer
    format is reported as such)."""
    if len(text) * 5 % 8 >= 5:
        raise PayloadError("malformed", "payload is not unpadded base32")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise PayloadError("malformed", "payload is not unpadded base32") from None
    if raw[0] != PAYLOAD_VERSION:
        raise PayloadError("unsupported_version", f"unsupported payload version {raw[0]}")
    raise PayloadError("malformed", "payload has the wrong length")


def verify_signature(
    public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes | str, parsed: ParsedPayload
) -> bool:
    """Ed25519 verification by libsodium (PyNaCl): about twice as fast as OpenSSL's here, and
    the check-in API verifies one signature per scan."""
    try:
        _verify_key(_as_public_key(public_key).public_bytes_raw()).verify(parsed.signed_bytes, parsed.signature)
    except BadSignatureError:
        return False
    return True


@functools.lru_cache(maxsize=8)
def _verify_key(raw_public_key: bytes) -> VerifyKey:
    return VerifyKey(raw_public_key)


def verify_payload_offline(
    public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes | str, text: str
) -> str:
    """AUTHENTIC, MALFORMED or FORGED, from the public key alone (no database).

    AUTHENTIC only means the server issued this code; the gate still has to
    ask the server whether the ticket is void or already used.
    """
    try:
        parsed = parse_payload(text)
    except PayloadError:
        return MALFORMED
    return AUTHENTIC if verify_signature(public_key, parsed) else FORGED


def _as_public_key(key) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, Ed25519PrivateKey):
        return key.public_key()  # ~2 µs: OpenSSL keeps the public half
    if isinstance(key, (bytes, str)):
        return load_public_key(key)
    raise TypeError("expected an Ed25519 public key")


def _private_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pad_b64(text: str) -> str:
    return text + "=" * (-len(text) % 4)
