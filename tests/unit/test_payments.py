import logging
import threading
from datetime import date

import pytest

from app.services.payments import (
    TEST_CARDS,
    CardDetails,
    ChargeResult,
    MockProvider,
    PaymentProvider,
    card_brand,
    is_valid_card_number,
    luhn_valid,
    validate_card,
)

TODAY = date(2026, 3, 15)
GOOD = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
CVV = "987"


def card(number=GOOD, month=12, year=2030, cvv=CVV, holder="Ada Lovelace"):
    return CardDetails(
        number=number, exp_month=month, exp_year=year, cvv=cvv, holder=holder
    )


def charge(provider, number=GOOD, key="order-1", amount=4500):
    return provider.charge(
        amount_cents=amount, currency="EUR", card=card(number), idempotency_key=key
    )


# --- numbers -----------------------------------------------------------------


@pytest.mark.parametrize(("number", "_outcome", "_description"), TEST_CARDS)
def test_every_test_card_is_luhn_valid(number, _outcome, _description):
    assert is_valid_card_number(number)
    assert validate_card(number, 12, 2030, CVV, "Ada", today=TODAY) == {}


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not is_valid_card_number("4242 4242 4242 4241")  # one digit off
    assert is_valid_card_number("4242-4242-4242-4242")


@pytest.mark.parametrize(
    "number",
    [
        "",
        "4242 4242 4242 424a",
        "42424242424",
        "4" * 20,
        "４２４２４２４２４２４２４２４２",
        None,
        4242424242424242,
    ],
)
def test_malformed_numbers_are_invalid(number):
    assert validate_card(number, 12, 2030, CVV, "Ada", today=TODAY) == {
        "number": "card_number_invalid"
    }


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        (GOOD, "Visa"),
        ("5555 5555 5555 4444", "Mastercard"),
        ("2223 0031 2200 3222", "Mastercard"),
        ("3782 822463 10005", "Amex"),
        ("6011 1111 1111 1117", "Card"),
        ("garbage", "Card"),
    ],
)
def test_card_brand(number, brand):
    assert card_brand(number) == brand


# --- validation ----------------------------------------------------------------


def test_a_good_card_has_no_errors():
    assert (
        validate_card(GOOD, "03", "26", " 123 ", "  Ada Lovelace ", today=TODAY) == {}
    )


@pytest.mark.parametrize(
    ("month", "year", "code"),
    [
        (2, 2026, "card_expired"),
        (12, 2025, "card_expired"),
        ("02", "26", "card_expired"),
        (0, 2030, "card_expiry_invalid"),
        (13, 2030, "card_expiry_invalid"),
        ("ab", 2030, "card_expiry_invalid"),
        (12, "", "card_expiry_invalid"),
        (None, 2030, "card_expiry_invalid"),
        (12, 2099, "card_expiry_invalid"),
        (12, 1999, "card_expiry_invalid"),
        (True, 2030, "card_expiry_invalid"),
    ],
)
def test_expiry_errors(month, year, code):
    assert validate_card(GOOD, month, year, CVV, "Ada", today=TODAY) == {"expiry": code}


def test_card_is_valid_through_its_expiry_month():
    assert validate_card(GOOD, 3, 2026, CVV, "Ada", today=date(2026, 3, 31)) == {}
    assert validate_card(GOOD, 3, 2026, CVV, "Ada", today=date(2026, 4, 1)) == {
        "expiry": "card_expired"
    }


@pytest.mark.parametrize("cvv", ["", "12", "1234", "12a", "１２３", None, 123])
def test_cvv_must_be_three_digits(cvv):
    assert validate_card(GOOD, 12, 2030, cvv, "Ada", today=TODAY) == {
        "cvv": "card_cvv_invalid"
    }


@pytest.mark.parametrize(
    ("holder", "code"),
    [
        ("", "card_holder_missing"),
        ("   ", "card_holder_missing"),
        (None, "card_holder_missing"),
        ("A" * 101, "card_holder_invalid"),
        ("Ada\nLovelace", "card_holder_invalid"),
    ],
)
def test_holder_errors(holder, code):
    assert validate_card(GOOD, 12, 2030, CVV, holder, today=TODAY) == {"holder": code}


def test_all_errors_at_once():
    assert validate_card("1234", 13, 2030, "1", "", today=TODAY) == {
        "number": "card_number_invalid",
        "expiry": "card_expiry_invalid",
        "cvv": "card_cvv_invalid",
        "holder": "card_holder_missing",
    }


# --- card details never leak ---------------------------------------------------


def test_card_details_are_normalised():
    details = card(number=GOOD, month="3", year="27")
    assert (details.number, details.exp_month, details.exp_year) == (
        "4242424242424242",
        3,
        2027,
    )
    assert (details.brand, details.last4) == ("Visa", "4242")


def test_repr_hides_number_and_cvv(caplog):
    details = card()
    shown = [
        repr(details),
        str(details),
        f"{details}",
        repr([details]),
        repr({"card": details}),
    ]
    with caplog.at_level(logging.INFO):
        logging.getLogger("guichet.test").info("paying with %s / %r", details, details)
    shown.append(caplog.text)
    for text in shown:
        assert "4242424242424242" not in text and "4242 4242" not in text
        assert CVV not in text
        assert "4242" in text  # last 4 stay visible


def test_results_hold_only_brand_and_last4():
    result = charge(MockProvider())
    assert (result.brand, result.last4) == ("Visa", "4242")
    shown = repr(result).replace(result.transaction_id, "")  # a random hex id may hold the CVV's digits
    assert "4242424242424242" not in shown and CVV not in shown


def test_malformed_card_details_raise_without_echoing_them():
    with pytest.raises(ValueError) as raised:
        card(number="4242 4242 4242 42x2", cvv="555")
    assert "4242" not in str(raised.value) and "555" not in str(raised.value)


# --- the mock provider -----------------------------------------------------------


def test_mock_provider_satisfies_the_interface():
    assert isinstance(MockProvider(), PaymentProvider)


@pytest.mark.parametrize(("number", "outcome", "_description"), TEST_CARDS)
def test_each_test_card_outcome(number, outcome, _description):
    provider = MockProvider()
    result = charge(provider, number=number)
    assert result.ok is (outcome == "success")
    if result.ok:
        assert result.error_code is None and result.transaction_id.startswith("mock_")
        assert provider.charge_count == 1
    else:
        assert result.error_code == outcome and result.transaction_id is None
        assert provider.charge_count == 0
    assert result.retriable is (outcome == "provider_unavailable")
    assert (result.amount_cents, result.currency) == (4500, "EUR")


def test_any_other_valid_number_is_declined():
    result = charge(MockProvider(), number="4111 1111 1111 1111")
    assert (result.ok, result.error_code) == (False, "card_declined")


def test_mock_rechecks_luhn():
    result = charge(MockProvider(), number="4242 4242 4242 4241")
    assert (result.ok, result.error_code) == (False, "card_number_invalid")


def test_same_key_charges_once():
    provider = MockProvider()
    first = charge(provider)
    second = charge(provider)
    assert first.ok and second.ok
    assert second.transaction_id == first.transaction_id
    assert (first.replayed, second.replayed) == (False, True)
    assert provider.charge_count == 1


def test_concurrent_double_submit_charges_once():
    provider = MockProvider()
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(charge(provider)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert provider.charge_count == 1
    assert len({result.transaction_id for result in results}) == 1


def test_different_keys_charge_twice():
    provider = MockProvider()
    assert (
        charge(provider, key="a").transaction_id
        != charge(provider, key="b").transaction_id
    )
    assert provider.charge_count == 2


def test_a_decline_is_replayed_and_a_retry_needs_a_new_key():
    provider = MockProvider()
    assert charge(provider, number=DECLINED).error_code == "card_declined"
    assert charge(provider, number=DECLINED).replayed
    reused = charge(provider, number=GOOD)  # same key, other card
    assert (reused.ok, reused.error_code) == (False, "idempotency_key_reused")
    assert provider.charge_count == 0
    assert charge(provider, number=GOOD, key="order-1-attempt-2").ok
    assert provider.charge_count == 1


def test_same_key_with_another_amount_is_refused():
    provider = MockProvider()
    charge(provider, amount=4500)
    assert charge(provider, amount=9000).error_code == "idempotency_key_reused"
    assert provider.charge_count == 1


def test_provider_unavailable_records_nothing_so_the_same_key_can_retry():
    provider = MockProvider()
    first = charge(provider, number="4000 0000 0000 0119")
    second = charge(provider, number="4000 0000 0000 0119")
    assert first.error_code == second.error_code == "provider_unavailable"
    assert not second.replayed and provider.attempt_count == 0


@pytest.mark.parametrize(
    ("amount", "currency", "key"),
    [
        (0, "EUR", "k"),
        (-5, "EUR", "k"),
        (12.5, "EUR", "k"),
        (True, "EUR", "k"),
        (100, "eur", "k"),
        (100, "EURO", "k"),
        (100, "EUR", ""),
        (100, "EUR", None),
    ],
)
def test_programming_errors_raise_without_card_data(amount, currency, key):
    with pytest.raises(ValueError) as raised:
        MockProvider().charge(
            amount_cents=amount, currency=currency, card=card(), idempotency_key=key
        )
    assert "4242" not in str(raised.value) and CVV not in str(raised.value)


def test_refund_once_per_key():
    provider = MockProvider()
    paid = charge(provider)
    first = provider.refund(
        transaction_id=paid.transaction_id, amount_cents=4500, idempotency_key="r1"
    )
    again = provider.refund(
        transaction_id=paid.transaction_id, amount_cents=4500, idempotency_key="r1"
    )
    assert first.ok and first.refund_id.startswith("mock_")
    assert again.refund_id == first.refund_id and again.replayed
    assert provider.refund_count == 1


def test_refund_cannot_exceed_the_charge():
    provider = MockProvider()
    paid = charge(provider)
    assert provider.refund(
        transaction_id=paid.transaction_id, amount_cents=3000, idempotency_key="r1"
    ).ok
    over = provider.refund(
        transaction_id=paid.transaction_id, amount_cents=2000, idempotency_key="r2"
    )
    assert (over.ok, over.error_code) == (False, "refund_exceeds_charge")
    assert provider.refund_count == 1


def test_refund_of_an_unknown_transaction():
    result = MockProvider().refund(
        transaction_id="ch_123", amount_cents=100, idempotency_key="r1"
    )
    assert (result.ok, result.error_code) == (False, "refund_unknown_transaction")


def test_refund_survives_a_restart_of_the_mock():
    paid = charge(MockProvider())
    assert (
        MockProvider()
        .refund(
            transaction_id=paid.transaction_id, amount_cents=4500, idempotency_key="r1"
        )
        .ok
    )


def test_refund_key_reused_for_another_refund_is_refused():
    provider = MockProvider()
    paid = charge(provider)
    provider.refund(
        transaction_id=paid.transaction_id, amount_cents=100, idempotency_key="r1"
    )
    reused = provider.refund(
        transaction_id=paid.transaction_id, amount_cents=200, idempotency_key="r1"
    )
    assert reused.error_code == "idempotency_key_reused"


def test_charge_result_defaults_describe_a_failure_shape():
    assert ChargeResult(ok=False, error_code="card_declined").transaction_id is None
