"""One error format for every bad argument in skopt_nn.

Every parameter check in the package goes through these helpers, so that a user always reads the same
sentence shape, modelled on scikit-learn's parameter validation::

    The 'lr' parameter of Adam must be a float in the range (0.0, inf). Got -1 instead.

Tests compare these messages exactly (not by substring), so a message with swapped numbers cannot ship.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

__all__ = [
    "Interval",
    "check_bool",
    "check_float",
    "check_int",
    "check_option",
    "check_pair",
    "close_matches",
    "invalid_param_message",
    "unknown_name_error",
]

Closed = Literal["neither", "left", "right", "both"]


@dataclass(frozen=True)
class Interval:
    """A real interval; ``None`` bounds are infinite. ``closed`` says which ends belong to it.

    Infinite ends are open: ``inf``, ``-inf`` and ``nan`` belong to no interval (a learning rate of ``inf`` is a
    NaN model, not a setting).
    """

    low: float | None = None
    high: float | None = None
    closed: Closed = "neither"

    def __contains__(self, value: object) -> bool:
        # an infinite bound is always open (the message prints it as "inf)"), so no interval holds +-inf
        if not isinstance(value, numbers.Real):
            return False
        try:
            x = float(value)
        except OverflowError:  # an int beyond float range
            return False
        if not math.isfinite(x):
            return False
        if self.low is not None:
            if x < self.low or (x == self.low and self.closed not in ("left", "both")):
                return False
        if self.high is not None:
            if x > self.high or (x == self.high and self.closed not in ("right", "both")):
                return False
        return True

    def __str__(self) -> str:
        left = "[" if self.closed in ("left", "both") and self.low is not None else "("
        right = "]" if self.closed in ("right", "both") and self.high is not None else ")"
        low = "-inf" if self.low is None else repr(float(self.low))
        high = "inf" if self.high is None else repr(float(self.high))
        return f"{left}{low}, {high}{right}"


POSITIVE = Interval(0.0, None, "neither")
NON_NEGATIVE = Interval(0.0, None, "left")
UNIT_OPEN_RIGHT = Interval(0.0, 1.0, "left")  # [0, 1): betas, momentum
UNIT_OPEN = Interval(0.0, 1.0, "neither")
UNIT_CLOSED = Interval(0.0, 1.0, "both")


def invalid_param_message(name: str, owner: str, expected: str, value: Any) -> str:
    """Return the one sentence every invalid parameter produces."""
    return f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."


def _is_real(value: Any, allow_int: bool) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return allow_int
    return isinstance(value, numbers.Real)


@overload
def check_float(
    value: Any, name: str, owner: str, interval: Interval = ..., *, allow_none: Literal[False] = ...
) -> float: ...
@overload
def check_float(value: Any, name: str, owner: str, interval: Interval = ..., *, allow_none: bool) -> float | None: ...
def check_float(
    value: Any, name: str, owner: str, interval: Interval = Interval(), *, allow_none: bool = False
) -> float | None:
    """Validate a real number (ints accepted) in ``interval``; return it as ``float``."""
    if value is None and allow_none:
        return None
    if not _is_real(value, allow_int=True) or value not in interval:
        expected = f"a float in the range {interval}"
        if allow_none:
            expected += " or None"
        raise ValueError(invalid_param_message(name, owner, expected, value))
    return float(value)


@overload
def check_int(
    value: Any, name: str, owner: str, interval: Interval = ..., *, allow_none: Literal[False] = ...
) -> int: ...
@overload
def check_int(value: Any, name: str, owner: str, interval: Interval = ..., *, allow_none: bool) -> int | None: ...
def check_int(
    value: Any, name: str, owner: str, interval: Interval = Interval(), *, allow_none: bool = False
) -> int | None:
    """Validate an integer (``bool`` excluded) in ``interval``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in interval:
        low = "-inf" if interval.low is None else str(int(math.ceil(interval.low)))
        high = "inf" if interval.high is None else str(int(math.floor(interval.high)))
        left = "[" if interval.low is None or interval.closed in ("left", "both") else "("
        right = "]" if interval.high is not None and interval.closed in ("right", "both") else ")"
        expected = f"an int in the range {left}{low}, {high}{right}"
        if allow_none:
            expected += " or None"
        raise ValueError(invalid_param_message(name, owner, expected, value))
    return int(value)


def check_bool(value: Any, name: str, owner: str) -> bool:
    """Validate a boolean (numpy booleans accepted)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError(invalid_param_message(name, owner, "a bool", value))
    return bool(value)


def check_option(value: Any, name: str, owner: str, options: Sequence[Any]) -> Any:
    """Validate that ``value`` is one of ``options`` (compared with ``==``, hashable or not)."""
    for option in options:
        if type(option) is type(value) and option == value:
            return value
        if option is None and value is None:
            return value
    shown = ", ".join(repr(o) for o in options)
    raise ValueError(invalid_param_message(name, owner, f"one of {{{shown}}}", value))


def check_pair(value: Any, name: str, owner: str, interval: Interval, *, kind: str = "floats") -> tuple[float, float]:
    """Validate a pair of reals, each in ``interval`` (e.g. Adam's ``betas``)."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_is_real(v, allow_int=True) and v in interval for v in value)
    )
    if not ok:
        expected = f"a pair of {kind} in the range {interval}"
        raise ValueError(invalid_param_message(name, owner, expected, value))
    return float(value[0]), float(value[1])


def close_matches(name: str, known: Iterable[str], n: int = 5) -> list[str]:
    """Known names that look like ``name`` (typos, other case, missing separators)."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    prefix = [k for k in known if k.lower().startswith(name.lower()) and k.lower() not in hits]
    return [lowered[h] for h in hits] + prefix[: max(0, n - len(hits))]


def unknown_name_error(kind: str, name: str, known: Iterable[str], hint: str = "") -> ValueError:
    """A ``ValueError`` for an unknown registry name that lists close matches."""
    known = sorted(known)
    matches = close_matches(name, known)
    msg = f"Unknown {kind} {name!r}."
    if matches:
        msg += " Did you mean " + ", ".join(repr(m) for m in matches) + "?"
    else:
        msg += " Known names: " + ", ".join(known) + "."
    if hint:
        msg += " " + hint
    return ValueError(msg)
