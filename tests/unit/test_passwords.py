import bcrypt
import pytest

from app.services.passwords import common_passwords, password_problems

STRONG = "Correct-Horse-Battery-9"


def test_strong_password_is_accepted():
    assert password_problems(STRONG, username="alice", email="alice@example.org") == []


def test_too_short_under_twelve_characters():
    assert "password_too_short" in password_problems("Xq7!pL2#vR")
    assert "password_too_short" not in password_problems("Xq7!pL2#vR9k")  # exactly 12


def test_length_counts_characters_not_bytes():
    assert "password_too_short" not in password_problems("éàüöçñøåßæœ€")


@pytest.mark.parametrize("password", ["é" * 37, "é" * 36 + "a", "x" * 73, "🙂" * 19])
def test_over_72_utf8_bytes_is_too_long_and_never_raises(password):
    assert len(password.encode("utf-8")) > 72
    assert "password_too_long" in password_problems(password)


@pytest.mark.parametrize("password", ["é" * 36, "x" * 72, "🙂" * 18])
def test_exactly_72_bytes_is_not_too_long(password):
    assert len(password.encode("utf-8")) == 72
    assert "password_too_long" not in password_problems(password)


def test_the_limit_is_bcrypts_own():
    """If bcrypt ever lifts or moves its limit, this tells us to revisit the rule."""
    bcrypt.hashpw(("é" * 36).encode(), bcrypt.gensalt(rounds=4))
    with pytest.raises(ValueError):
        bcrypt.hashpw(("é" * 36 + "a").encode(), bcrypt.gensalt(rounds=4))


@pytest.mark.parametrize(
    "password",
    [
        "Alice-Winter-Kq93!",  # username, other case
        "xK9#lucie.martin!2",  # email local part
        "LUCIE.MARTIN@EXAMPLE.FR",  # whole email
        "Lucie-Martin-1990!",  # local part / full name with separators
    ],
)
def test_personal_passwords_are_refused(password):
    problems = password_problems(
        password, username="alice", email="lucie.martin@example.fr"
    )
    assert "password_is_personal" in problems


def test_full_name_is_personal():
    problems = password_problems("MartinLucie#1990", names=["Lucie", "Martin"])
    assert "password_is_personal" in problems


def test_very_short_username_is_ignored():
    assert "password_is_personal" not in password_problems(STRONG, username="ho")
    assert "password_is_personal" in password_problems(STRONG, username="hor")


def test_empty_personal_data_flags_nothing():
    assert "password_is_personal" not in password_problems(
        STRONG, username="", email=""
    )


def test_shipped_list_is_large_and_loaded_once():
    words = common_passwords()
    assert len(words) >= 10_000
    assert {"123456", "password", "qwerty"} <= words
    assert common_passwords() is words


@pytest.mark.parametrize("password", ["1qaz2wsx3edc", "1QAZ2WSX3EDC", "Qwerty123456"])
def test_common_passwords_are_refused_case_insensitively(password):
    assert "password_too_common" in password_problems(password)


def test_uncommon_password_is_not_common():
    assert "password_too_common" not in password_problems(STRONG)


@pytest.mark.parametrize(
    "password", ["aaaaaaaaaaaaaaaa", "abcdefghijklmnop", "qwertyuiopasdfgh"]
)
def test_weak_but_uncommon_passwords_are_refused(password):
    problems = password_problems(password)
    assert "password_too_common" not in problems
    assert "password_too_weak" in problems


def test_user_inputs_make_zxcvbn_stricter():
    password = "zorglubette-91"
    assert "password_too_weak" not in password_problems(password)
    assert "password_too_weak" in password_problems(password, names=["Zorglubette"])


def test_codes_come_in_a_stable_order():
    assert password_problems("password", username="password") == [
        "password_too_short",
        "password_is_personal",
        "password_too_common",
        "password_too_weak",
    ]


def test_empty_password_gives_codes_not_an_exception():
    assert password_problems("") == ["password_too_short", "password_too_weak"]
