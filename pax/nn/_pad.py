"""Padding for convolutions: Haiku's padding functions and argument parsing.

A *padding function* maps the effective kernel size of one spatial dimension
(``(kernel_size - 1) * rate + 1``) to the ``(low, high)`` number of elements
added before and after that dimension. Convolutions accept one, or one per
spatial dimension, as their ``padding`` argument, next to ``"SAME"``,
``"VALID"`` and explicit ``(low, high)`` pairs.

>>> same(3), full(3), causal(3)
((1, 1), (2, 2), (2, 0))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["PadFn", "Padding", "valid", "same", "full", "causal", "reverse_causal"]

PadFn = Callable[[int], tuple[int, int]]
"""A padding function: effective kernel size -> ``(low, high)``."""

Padding = str | PadFn | tuple[int, int] | Sequence[tuple[int, int] | PadFn]
"""What a convolution's ``padding`` argument may be."""

_STRINGS = ("SAME", "VALID")


def valid(effective_kernel_size: int) -> tuple[int, int]:
    """No padding: ``(0, 0)``; the kernel only visits real elements.

    >>> valid(5)
    (0, 0)
    """
    del effective_kernel_size
    return (0, 0)


def same(effective_kernel_size: int) -> tuple[int, int]:
    """Pad so that a stride-1 convolution keeps the input's size.

    The odd element, if any, goes after: ``((k - 1) // 2, k // 2)``.

    >>> same(3), same(4)
    ((1, 1), (1, 2))
    """
    k = effective_kernel_size
    return ((k - 1) // 2, k // 2)


def full(effective_kernel_size: int) -> tuple[int, int]:
    """Pad ``k - 1`` on both sides: every output sees at least one real element.

    >>> full(3)
    (2, 2)
    """
    return (effective_kernel_size - 1, effective_kernel_size - 1)


def causal(effective_kernel_size: int) -> tuple[int, int]:
    """Pad ``k - 1`` before only: output ``t`` depends on inputs ``<= t``.

    >>> causal(3)
    (2, 0)
    """
    return (effective_kernel_size - 1, 0)


def reverse_causal(effective_kernel_size: int) -> tuple[int, int]:
    """Pad ``k - 1`` after only: output ``t`` depends on inputs ``>= t``.

    >>> reverse_causal(3)
    (0, 2)
    """
    return (0, effective_kernel_size - 1)


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_pair(x: Any) -> bool:
    return (
        isinstance(x, Sequence)
        and not isinstance(x, str)
        and len(x) == 2
        and all(map(_is_int, x))
    )


def is_padding_fn(padding: Any) -> bool:
    """True for a padding function or a non-empty sequence of them."""
    if callable(padding):
        return True
    return (
        isinstance(padding, Sequence)
        and not isinstance(padding, str)
        and len(padding) > 0
        and all(map(callable, padding))
    )


def _entry_pair(entry: Any, effective_size: int, owner: str) -> tuple[int, int]:
    """One spatial dimension's ``(low, high)`` from a pair or a padding function."""
    if callable(entry):
        pair = entry(effective_size)
        if not _is_pair(pair):
            name = getattr(entry, "__name__", repr(entry))
            raise TypeError(
                f"{owner}: padding function {name} must return a pair of ints "
                f"(low, high), got {pair!r} for effective kernel size "
                f"{effective_size}"
            )
        return (int(pair[0]), int(pair[1]))
    if _is_pair(entry):
        return (int(entry[0]), int(entry[1]))
    raise TypeError(
        f"{owner}: each `padding` entry must be a (low, high) pair of ints or a "
        f"padding function, got {entry!r}"
    )


def resolve_padding(
    padding: Any,
    kernel_shape: Sequence[int],
    rate: Sequence[int],
    owner: str,
    *,
    allow_fns: bool = True,
) -> str | tuple[tuple[int, int], ...]:
    """Turn a ``padding`` argument into ``"SAME"``, ``"VALID"`` or n pairs.

    Accepted forms (``n = len(kernel_shape)`` spatial dimensions):

    * ``"SAME"`` / ``"VALID"`` in any case: returned upper-case;
    * a padding function, applied to every dimension's effective kernel size
      ``(k - 1) * rate + 1``;
    * a single ``(low, high)`` pair, used for every dimension;
    * a sequence of 1 or ``n`` entries, each a pair or a padding function
      (one entry is replicated).

    Raises ``ValueError`` for an unknown string or a wrong number of entries,
    ``TypeError`` for anything of the wrong type.

    >>> resolve_padding("same", (3, 3), (1, 1), "Conv2D")
    'SAME'
    >>> resolve_padding(causal, (3, 3), (2, 1), "Conv2D")
    ((4, 0), (2, 0))
    >>> resolve_padding((1, 2), (3, 3), (1, 1), "Conv2D")
    ((1, 2), (1, 2))
    """
    n = len(kernel_shape)
    if isinstance(padding, str):
        upper = padding.upper()
        if upper not in _STRINGS:
            raise ValueError(
                f"{owner}: unknown `padding` {padding!r}; expected 'SAME', 'VALID', "
                "a (low, high) pair, a padding function, or a sequence of "
                f"{n} of those"
            )
        return upper
    if callable(padding) or _is_pair(padding):
        entries = (padding,) * n
    elif isinstance(padding, Sequence) and len(padding) > 0:
        entries = tuple(padding)
        if len(entries) == 1:
            entries = entries * n
        if len(entries) != n:
            raise ValueError(
                f"{owner}: `padding` must have 1 or {n} entries (one per spatial "
                f"dimension), got {len(entries)}: {padding!r}"
            )
    else:
        raise TypeError(
            f"{owner}: `padding` must be 'SAME', 'VALID', a (low, high) pair, a "
            f"padding function, or a sequence of {n} of those, got {padding!r}"
        )
    if not allow_fns and any(map(callable, entries)):
        raise TypeError(
            f"{owner}: `padding` must be 'SAME', 'VALID' or (low, high) pairs; "
            "padding functions are not supported here"
        )
    effective = [(k - 1) * r + 1 for k, r in zip(kernel_shape, rate)]
    return tuple(_entry_pair(e, s, owner) for e, s in zip(entries, effective))
