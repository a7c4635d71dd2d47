"""helpers.exercises: a check must fail on the stub, with the stub's hint."""

import pytest

from helpers.exercises import expect_stub_fails


def check_double(function) -> None:
    assert function(2) == 4, "double(2) should be 4"


def stub_with_hint(x):
    raise NotImplementedError("return twice x")


def stub_without_hint(x):
    raise NotImplementedError


def test_returns_the_hint_of_a_stub_the_check_rejects():
    assert expect_stub_fails(check_double, stub_with_hint) == "return twice x"


def test_a_stub_without_a_hint_is_refused():
    with pytest.raises(AssertionError, match="without a hint"):
        expect_stub_fails(check_double, stub_without_hint)


def test_a_check_that_passes_on_the_stub_is_refused():
    def lenient_check(function) -> None:
        pass

    with pytest.raises(AssertionError, match="cannot fail"):
        expect_stub_fails(lenient_check, stub_with_hint)
