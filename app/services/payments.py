"""Card payments behind a provider interface (SPEC §5), with a deterministic mock.

The full card number and the CVV live only in a `CardDetails` for the length
of one request: they never reach a repr, an exception message or a log line,
and only brand + last 4 + the provider's transaction id are worth keeping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

HOLDER_MAX_LENGTH = 100
MAX_YEARS_AHEAD = 20

_SEPARATORS = re.compile(r"[\s\-]+")
_CARD_DIGITS = re.compile(r"[0-9]{12,19}")
_CVV = re.compile(r"[0-9]{3}")
_EXPIRY_PART = re.compile(r"[0-9]{1,4}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MOCK_TRANSACTION = re.compile(r"mock_ch_[0-9a-f]{24}")

# (number, outcome, description) — the README's table of test cards.
TEST_CARDS = [
    ("4242 4242 4242 4242", "success", "Visa: payment accepted"),
    ("5555 5555 5555 4444", "success", "Mastercard: payment accepted"),
    ("4000 0000 0000 0002", "card_declined", "Visa: declined by the bank"),
    ("4000 0000 0000 9995", "insufficient_funds", "Visa: declined, insufficient funds"),
    (
        "4000 0000 0000 0119",
        "provider_unavailable",
        "Visa: provider unreachable (network error); nothing charged, retry is safe",
    ),
]
# Any other Luhn-valid number is declined: a typo must never pay by accident.
DEFAULT_OUTCOME = "card_declined"
_OUTCOMES = {number.replace(" ", ""): outcome for number, outcome, _ in TEST_CARDS}


def card_digits(number: object) -> str | None:
    """The digits of a card number typed with spaces or dashes; None if anything else."""
    if not isinstance(number, str):
        return None
    digits = _SEPARATORS.sub("", number)
    return digits if _CARD_DIGITS.fullmatch(digits) else None


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_valid_card_number(number: object) -> bool:
    digits = card_digits(number)
    return digits is not None and luhn_valid(digits)


def card_brand(number: object) -> str:
    digits = card_digits(number) or ""
    if digits.startswith("4"):
        return "Visa"
    if digits[:2] in {"34", "37"}:
        return "Amex"
    if "51" <= digits[:2] <= "55" or (
        len(digits) >= 4 and 2221 <= int(digits[:4]) <= 2720
    ):
        return "Mastercard"
    return "Card"


def parse_expiry(exp_month: object, exp_year: object) -> tuple[int, int] | None:
    """(year, month) from ints or strings; '27' means 2027. None when unparsable."""
    parts = []
    for value in (exp_month, exp_year):
        if isinstance(value, str) and _EXPIRY_PART.fullmatch(value.strip()):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        parts.append(value)
    month, year = parts
    if year < 100:
        year += 2000
    if not (1 <= month <= 12 and 2000 <= year <= 2099):
        return None
    return year, month


def validate_card(
    number, exp_month, exp_year, cvv, holder, *, today: date
) -> dict[str, str]:
    """Field name ('number', 'expiry', 'cvv', 'holder') -> error code; {} when acceptable.

    A card is valid through the last day of its expiry month.
    """
    errors = {}
    if not is_valid_card_number(number):
        errors["number"] = "card_number_invalid"
    expiry = parse_expiry(exp_month, exp_year)
    if expiry is None or expiry[0] > today.year + MAX_YEARS_AHEAD:
        errors["expiry"] = "card_expiry_invalid"
    elif expiry < (today.year, today.month):
        errors["expiry"] = "card_expired"
    if not (isinstance(cvv, str) and _CVV.fullmatch(cvv.strip())):
        errors["cvv"] = "card_cvv_invalid"
    holder_text = holder.strip() if isinstance(holder, str) else ""
    if not holder_text:
        errors["holder"] = "card_holder_missing"
    elif len(holder_text) > HOLDER_MAX_LENGTH or not holder_text.isprintable():
        errors["holder"] = "card_holder_invalid"
    return errors


@dataclass(frozen=True, repr=False)
class CardDetails:
    """What the buyer typed, normalised. Safe to log: the repr shows brand and last 4 only.

    Never store it, put it in the session or pass it to `dataclasses.asdict`.
    """

    number: str
    exp_month: int
    exp_year: int
    cvv: str
    holder: str

    def __post_init__(self):
        digits = card_digits(self.number)
        expiry = parse_expiry(self.exp_month, self.exp_year)
        if digits is None or expiry is None:
            raise ValueError("card details are malformed; run validate_card first")
        object.__setattr__(self, "number", digits)
        object.__setattr__(self, "exp_year", expiry[0])
        object.__setattr__(self, "exp_month", expiry[1])
        object.__setattr__(self, "cvv", str(self.cvv).strip())
        object.__setattr__(self, "holder", str(self.holder).strip())

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def brand(self) -> str:
        return card_brand(self.number)

    def __repr__(self) -> str:
        return (
            f"CardDetails(brand={self.brand!r}, number='**** {self.last4}', "
            f"exp='{self.exp_month:02d}/{self.exp_year}', cvv='***', holder={self.holder!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class ChargeResult:
    """`retriable` failures charged nothing and may be retried with the same key."""

    ok: bool
    error_code: str | None = None
    transaction_id: str | None = None
    brand: str = ""
    last4: str = ""
    amount_cents: int = 0
    currency: str = ""
    retriable: bool = False
    replayed: bool = False  # the provider answered from its idempotency record


@dataclass(frozen=True)
class RefundResult:
    ok: bool
    error_code: str | None = None
    refund_id: str | None = None
    transaction_id: str | None = None
    amount_cents: int = 0
    replayed: bool = False


@runtime_checkable
class PaymentProvider(Protocol):
    """What the order service needs from a payment provider; the mock is one.

    Idempotency follows the usual provider contract (Stripe's): a key replays
    the first answer it got, success or decline, and a key reused with other
    parameters is refused ("idempotency_key_reused"). So use one key per
    payment attempt: keep it on the order, make a new one after a decline.
    """

    name: str

    def charge(
        self,
        *,
        amount_cents: int,
        currency: str,
        card: CardDetails,
        idempotency_key: str,
    ) -> ChargeResult: ...

    def refund(
        self, *, transaction_id: str, amount_cents: int, idempotency_key: str
    ) -> RefundResult: ...


def _check_request(
    amount_cents: object, idempotency_key: object, currency: object = "EUR"
) -> None:
    """Programming errors, not payment outcomes: they raise."""
    if not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        raise ValueError("currency must be an ISO 4217 code such as 'EUR'")
    if (
        not isinstance(amount_cents, int)
        or isinstance(amount_cents, bool)
        or amount_cents <= 0
    ):
        raise ValueError("amount_cents must be a positive integer")
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 255:
        raise ValueError(
            "idempotency_key must be a non-empty string of at most 255 characters"
        )


class MockProvider:
    """Deterministic outcomes by card number (see TEST_CARDS); thread-safe.

    Remembers idempotency keys in memory, so the same key never charges
    twice within a process. `charge_count` counts successful charges (money
    taken), `attempt_count` every charge that was actually processed.
    """

    name = "mock"

    def __init__(self):
        self._lock = threading.Lock()
        self._fingerprint_key = secrets.token_bytes(32)
        self._charges: dict[str, tuple[str, ChargeResult]] = {}
        self._refunds: dict[str, tuple[str, RefundResult]] = {}
        self._captured: dict[str, int] = {}
        self._refunded: dict[str, int] = {}
        self.charge_count = 0
        self.attempt_count = 0
        self.refund_count = 0

    def _fingerprint(self, *parts: object) -> str:
        # Keyed hash: the mock's memory holds no card number either.
        message = "|".join(str(part) for part in parts).encode("utf-8")
        return hmac.new(self._fingerprint_key, message, hashlib.sha256).hexdigest()

    def charge(
        self,
        *,
        amount_cents: int,
        currency: str,
        card: CardDetails,
        idempotency_key: str,
    ) -> ChargeResult:
        _check_request(amount_cents, idempotency_key, currency)
        fingerprint = self._fingerprint(amount_cents, currency, card.number)
        with self._lock:
            if idempotency_key in self._charges:
                known, result = self._charges[idempotency_key]
                if known != fingerprint:
                    return ChargeResult(
                        ok=False,
                        error_code="idempotency_key_reused",
                        amount_cents=amount_cents,
                        currency=currency,
                    )
                return dataclasses.replace(result, replayed=True)
            result = self._decide(amount_cents, currency, card)
            if not result.retriable:  # an unreachable provider recorded nothing
                self._charges[idempotency_key] = (fingerprint, result)
                self.attempt_count += 1
            if result.ok:
                self._captured[result.transaction_id] = amount_cents
                self.charge_count += 1
            return result

    def _decide(
        self, amount_cents: int, currency: str, card: CardDetails
    ) -> ChargeResult:
        common = {
            "brand": card.brand,
            "last4": card.last4,
            "amount_cents": amount_cents,
            "currency": currency,
        }
        if not luhn_valid(card.number):
            return ChargeResult(ok=False, error_code="card_number_invalid", **common)
        outcome = _OUTCOMES.get(card.number, DEFAULT_OUTCOME)
        if outcome == "success":
            return ChargeResult(
                ok=True, transaction_id=f"mock_ch_{secrets.token_hex(12)}", **common
            )
        return ChargeResult(
            ok=False,
            error_code=outcome,
            retriable=outcome == "provider_unavailable",
            **common,
        )

    def refund(
        self, *, transaction_id: str, amount_cents: int, idempotency_key: str
    ) -> RefundResult:
        """Refunds any well-formed mock transaction id, even one charged before a
        restart (the mock's memory is per process); known charges cannot be over-refunded."""
        _check_request(amount_cents, idempotency_key)
        fingerprint = self._fingerprint(transaction_id, amount_cents)
        with self._lock:
            if idempotency_key in self._refunds:
                known, result = self._refunds[idempotency_key]
                if known != fingerprint:
                    return RefundResult(
                        ok=False,
                        error_code="idempotency_key_reused",
                        transaction_id=transaction_id,
                        amount_cents=amount_cents,
                    )
                return dataclasses.replace(result, replayed=True)
            result = self._decide_refund(transaction_id, amount_cents)
            self._refunds[idempotency_key] = (fingerprint, result)
            if result.ok:
                self._refunded[transaction_id] = (
                    self._refunded.get(transaction_id, 0) + amount_cents
                )
                self.refund_count += 1
            return result

    def _decide_refund(self, transaction_id: str, amount_cents: int) -> RefundResult:
        common = {"transaction_id": transaction_id, "amount_cents": amount_cents}
        if not isinstance(transaction_id, str) or not _MOCK_TRANSACTION.fullmatch(
            transaction_id
        ):
            return RefundResult(
                ok=False, error_code="refund_unknown_transaction", **common
            )
        charged = self._captured.get(transaction_id)
        if (
            charged is not None
            and self._refunded.get(transaction_id, 0) + amount_cents > charged
        ):
            return RefundResult(ok=False, error_code="refund_exceeds_charge", **common)
        return RefundResult(
            ok=True, refund_id=f"mock_re_{secrets.token_hex(12)}", **common
        )
