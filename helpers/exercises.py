"""Exercises: each is a stub that raises ``NotImplementedError`` with a hint, a check, and a solution.

The instructor notebook's solution cell (tagged ``solution``; ``make student`` removes it) proves both halves
of an exercise on every run: the check fails on the stub with the stub's hint, and passes on the solution.
"""


def expect_stub_fails(check, stub) -> str:
    """Run ``check(stub)`` and require it to fail with the stub's hint; returns the hint.

    Raises ``AssertionError`` if the check passes on the unsolved stub (it could never fail a student) or if
    the stub's ``NotImplementedError`` carries no hint.
    """
    try:
        check(stub)
    except NotImplementedError as error:
        hint = str(error).strip()
        if not hint:
            raise AssertionError(f"{stub.__name__} raises NotImplementedError without a hint") from error
        return hint
    raise AssertionError(f"{check.__name__} passed on the unsolved stub {stub.__name__}: it cannot fail")
