"""Not part of the suite (no test_ prefix): the CI tests run it on purpose to see a failure."""


def test_this_sample_fails():
    assert 1 + 1 == 3
