import base64
import hashlib
import random
import stat
import struct

import pytest
import qrcode
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from qrcode.constants import ERROR_CORRECT_H

from app.services.signing import (
    AUTHENTIC,
    FORGED,
    MALFORMED,
    PAYLOAD_CHARS,
    PayloadError,
    digest_matches,
    double_key_digest,
    generate_private_key_pem,
    load_or_create_key_file,
    load_private_key,
    load_public_key,
    make_purchase_key,
    make_user_key,
    parse_payload,
    private_key_seed_b64,
    public_key_pem,
    sign_payload,
    verify_payload_offline,
    verify_signature,
)

QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@pytest.fixture(scope="module")
def key():
    return load_private_key(generate_private_key_pem())


@pytest.fixture(scope="module")
def digest():
    return double_key_digest(make_user_key(), make_purchase_key())


@pytest.fixture(scope="module")
def payload(key, digest):
    return sign_payload(key, 1234567, digest)


def qr_version(text):
    """Version chosen by the qrcode library itself (not our faster builder)."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_H)
    qr.add_data(text, optimize=0)
    qr.make(fit=True)
    return qr.version


def test_keys_are_random_32_bytes_and_digest_is_sha256_of_both():
    user, purchase = make_user_key(), make_purchase_key()
    assert len(user) == len(purchase) == 32
    assert user != purchase != make_purchase_key()
    assert double_key_digest(user, purchase) == hashlib.sha256(user + purchase).digest()
    assert double_key_digest(user, purchase) != double_key_digest(purchase, user)


def test_round_trip(key, digest, payload):
    parsed = parse_payload(payload)
    assert parsed.version == 1
    assert parsed.ticket_id == 1234567
    assert parsed.digest_prefix == digest[:16]
    assert parsed.signed_bytes == b"GCH1" + struct.pack(">BQ", 1, 1234567) + digest[:16]
    assert verify_signature(key.public_key(), parsed) is True
    assert verify_payload_offline(key.public_key(), payload) == AUTHENTIC
    assert digest_matches(parsed, digest)


@pytest.mark.parametrize("ticket_id", [0, 1, 2**32, 2**64 - 1])
def test_ticket_id_range(key, digest, ticket_id):
    assert parse_payload(sign_payload(key, ticket_id, digest)).ticket_id == ticket_id


@pytest.mark.parametrize("ticket_id, digest_len", [(-1, 32), (2**64, 32), (1, 15)])
def test_sign_refuses_bad_arguments(key, ticket_id, digest_len):
    with pytest.raises(ValueError):
        sign_payload(key, ticket_id, bytes(digest_len))


def test_rotated_user_key_no_longer_matches(digest, payload):
    rotated = double_key_digest(make_user_key(), make_purchase_key())
    assert not digest_matches(parse_payload(payload), rotated)
    assert digest_matches(parse_payload(payload), digest)


def test_case_and_surrounding_whitespace_are_tolerated(key, payload):
    for text in (payload.lower(), f"  {payload}\r\n", "\t" + payload.swapcase()):
        assert verify_payload_offline(key.public_key(), text) == AUTHENTIC


def test_every_single_character_change_is_rejected(key, payload):
    public = key.public_key()
    for i, original in enumerate(payload):
        for replacement in BASE32.replace(original, ""):
            changed = payload[:i] + replacement + payload[i + 1:]
            try:
                assert not verify_signature(public, parse_payload(changed)), (i, replacement)
            except PayloadError:
                pass


def test_last_character_has_a_single_canonical_spelling(payload):
    """143 base32 chars carry 715 bits for 712: the 3 spare bits must be zero."""
    with pytest.raises(PayloadError) as caught:
        parse_payload(payload[:-1] + chr(ord(payload[-1]) + 1))
    assert caught.value.code == "malformed"


def test_signature_from_another_key_is_forged(key, digest, payload):
    other = Ed25519PrivateKey.generate()
    assert verify_payload_offline(other.public_key(), payload) == FORGED
    forged = sign_payload(other, 1234567, digest)
    assert verify_payload_offline(key.public_key(), forged) == FORGED
    assert verify_signature(key.public_key(), parse_payload(forged)) is False


def test_signature_covers_the_domain_prefix(key, digest):
    """A signature over the bare fields (no b"GCH1") must not verify."""
    header = struct.pack(">BQ16s", 1, 42, digest[:16])
    text = base64.b32encode(header + key.sign(header)).decode().rstrip("=")
    assert verify_payload_offline(key.public_key(), text) == FORGED


def nasty_inputs(payload):
    rng = random.Random(20240726)
    yield from [
        "", " ", "\n", "A", "AB", "ABC", "=", "========", "AE======", payload + "=",
        payload + "====", payload[:-1], payload[:-2], payload + "A", payload + "AA",
        payload[:70] + " " + payload[70:], payload[:70] + "-" + payload[70:],
        "A" * PAYLOAD_CHARS, "7" * PAYLOAD_CHARS, "Z" * 10_000, "A" * 513,
        "É" * PAYLOAD_CHARS, "ß" * 72, "\u0130" * 50, "\x00" * PAYLOAD_CHARS, "🎫" * 20,
        payload.replace("A", "0"), payload.replace("E", "1"), payload[:-1] + "=",
        base64.urlsafe_b64encode(b"\x01" * 89).decode(), "otpauth://totp/x?secret=AB",
        "\ufeff" + payload, payload + "\u200b", payload.encode().hex().upper(),
        None, b"bytes", 12345, ["list"],
    ]
    for _ in range(3000):
        length = rng.choice([1, 2, 7, 8, 56, 142, 143, 144, 150, rng.randrange(300)])
        yield "".join(rng.choice(BASE32 + "=018 abc-") for _ in range(length))
    for _ in range(500):
        yield "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(200)))


def test_nasty_inputs_only_raise_payload_error(key, payload):
    public = key.public_key()
    for text in nasty_inputs(payload):
        try:
            parsed = parse_payload(text)
        except PayloadError as error:
            assert error.code in {"malformed", "unsupported_version"}
            assert isinstance(error, ValueError)
        else:
            assert not verify_signature(public, parsed), text
        assert verify_payload_offline(public, text) in {MALFORMED, FORGED}


def test_error_codes(key, digest, payload):
    version_2 = base64.b32encode(b"\x02" + base64.b32decode(payload + "=")[1:]).decode()
    with pytest.raises(PayloadError) as caught:
        parse_payload(version_2.rstrip("="))
    assert caught.value.code == "unsupported_version"
    assert verify_payload_offline(key.public_key(), version_2.rstrip("=")) == MALFORMED
    with pytest.raises(PayloadError) as caught:
        parse_payload(payload[:-8])
    assert caught.value.code == "malformed"


def test_payload_uses_qr_alphanumeric_mode_and_fits_version_10_at_h(key):
    text = sign_payload(key, 2**64 - 1, bytes(range(32)))
    assert len(text) == PAYLOAD_CHARS == 143
    assert set(text) <= QR_ALPHANUMERIC
    assert text == text.upper() and "=" not in text
    assert qr_version(text) <= 10


def test_base32_gives_a_smaller_qr_than_base64(payload):
    """The claim in README.md (QR payload format): version 9 (base32) against 10 (base64url)."""
    raw = base64.b32decode(payload + "=" * (-len(payload) % 8))
    b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert (qr_version(payload), qr_version(b64)) == (9, 10)


def test_pem_and_raw_seed_load_the_same_key():
    pem = generate_private_key_pem()
    from_pem = load_private_key(pem)
    seed = from_pem.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    expected = public_key_pem(from_pem)
    spellings = [
        pem.decode(),
        pem.decode().replace("\n", "\\n"),  # one-line PEM in a .env file
        base64.b64encode(seed).decode(),
        base64.urlsafe_b64encode(seed).decode().rstrip("="),
        f"  {base64.b64encode(seed).decode()}\n",
        private_key_seed_b64(from_pem),
        private_key_seed_b64(from_pem).encode(),
    ]
    for spelling in spellings:
        assert public_key_pem(load_private_key(spelling)) == expected
    assert load_private_key(pem) is from_pem  # cached: no PEM parsing per request


@pytest.mark.parametrize("bad", [
    "", "not a key", base64.b64encode(bytes(31)).decode(), base64.b64encode(bytes(33)).decode(),
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
])
def test_bad_private_keys_are_refused(bad):
    with pytest.raises(ValueError) as caught:
        load_private_key(bad)
    assert bad.strip() == "" or bad.strip() not in str(caught.value)


def test_non_ed25519_keys_are_refused():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    public_pem = ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError):
        load_private_key(private_pem)
    with pytest.raises(ValueError):
        load_public_key(public_pem)


def test_public_key_pem_round_trip(key, payload):
    pem = public_key_pem(key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE" not in pem
    assert verify_payload_offline(load_public_key(pem), payload) == AUTHENTIC
    assert verify_payload_offline(pem, payload) == AUTHENTIC
    assert verify_payload_offline(pem.decode(), payload) == AUTHENTIC
    assert load_public_key(pem) is load_public_key(pem)


def test_load_or_create_key_file_creates_then_reuses(tmp_path):
    path = tmp_path / "instance" / "ticket-signing.pem"
    created = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert content.startswith(b"-----BEGIN PRIVATE KEY-----")
    reused = load_or_create_key_file(path)
    assert public_key_pem(reused) == public_key_pem(created)
    assert path.read_bytes() == content
    other = load_or_create_key_file(tmp_path / "other.pem")
    assert public_key_pem(other) != public_key_pem(created)


def test_published_test_vector():
    """The vector in README.md (QR payload format), for people writing scanner apps."""
    key = load_private_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
    digest = double_key_digest(b"\x11" * 32, b"\x22" * 32)
    assert digest.hex() == "5189c77d29fe5d546a045ec46986852785fea5c13ac7da9c115ff5fb6edf817c"
    assert public_key_pem(key) == (
        b"-----BEGIN PUBLIC KEY-----\n"
        b"MCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n"
        b"-----END PUBLIC KEY-----\n"
    )
    assert sign_payload(key, 42, digest) == (
        "AEAAAAAAAAAAAKSRRHDX2KP6LVKGUBC6YRUYNBJHLQUXBFKTAV45RCEAQRG7O5KWWVVZBTV3OF4BQRG6"
        "CTUF5MASDZIB7JV33ICOPYYWP2CWLF536DSO7YDHOCX42N4QT6PU3QKHEGG2ECI"
    )


def test_decoding_agrees_with_the_standard_base32_decoder():
    """parse_payload reads the 143 characters as one integer; it must give exactly the bytes that
    base64.b32decode gives, for any content."""
    rng = random.Random(20261122)
    for _ in range(500):
        raw = bytes([1]) + rng.randbytes(88)
        text = base64.b32encode(raw).decode().rstrip("=")
        parsed = parse_payload(text.lower() if rng.random() < 0.5 else text)
        assert (parsed.version, parsed.ticket_id, parsed.digest_prefix) == struct.unpack(">BQ16s", raw[:25])
        assert parsed.signature == raw[25:] and parsed.signed_bytes == b"GCH1" + raw[:25]


def test_libsodium_and_openssl_agree_on_every_signature(key, digest):
    """verify_signature uses libsodium; OpenSSL (cryptography) must reach the same verdict on
    genuine, tampered and foreign signatures."""
    rng = random.Random(7)
    public, other = key.public_key(), Ed25519PrivateKey.generate()
    for ticket_id in rng.sample(range(1, 2**40), 50):
        for signer in (key, other):
            parsed = parse_payload(sign_payload(signer, ticket_id, digest))
            tampered = bytearray(parsed.signature)
            tampered[rng.randrange(64)] ^= 1 << rng.randrange(8)
            for signature in (parsed.signature, bytes(tampered)):
                candidate = type(parsed)(parsed.version, parsed.ticket_id, parsed.digest_prefix, signature,
                                         parsed.signed_bytes)
                try:
                    public.verify(signature, parsed.signed_bytes)
                    openssl = True
                except Exception:  # noqa: BLE001 - cryptography's InvalidSignature
                    openssl = False
                assert verify_signature(public, candidate) is openssl
                assert openssl is (signer is key and signature == parsed.signature)
