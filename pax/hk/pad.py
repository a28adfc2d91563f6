"""``hk.pad``: Haiku's padding functions and the helpers that expand them.

A padding function maps one spatial dimension's effective kernel size
``(kernel - 1) * rate + 1`` to ``(low, high)``. ``valid``, ``same``,
``full``, ``causal`` and ``reverse_causal`` are ``pax.nn.pad``'s (one
implementation); ``create_from_padfn`` / ``create_from_tuple`` expand a
convolution's ``padding`` argument to one pair per spatial dimension, as
Haiku's ``ConvND`` does.

>>> import pax.hk as hk
>>> hk.pad.create_from_padfn(hk.pad.causal, kernel=3, rate=(1, 2), n=2)
((2, 0), (4, 0))
>>> hk.pad.create_from_tuple((1, 2), 3)
((1, 2), (1, 2), (1, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..nn import pad as _nn_pad
from ..nn.pad import causal as causal
from ..nn.pad import full as full
from ..nn.pad import reverse_causal as reverse_causal
from ..nn.pad import same as same
from ..nn.pad import valid as valid
from ._conv_utils import replicate

#: A padding function: ``pad_fn(effective_kernel_size) -> (before, after)``.
PadFn = _nn_pad.PadFn

__all__ = [
    "PadFn",
    "causal",
    "create",
    "create_from_padfn",
    "create_from_tuple",
    "full",
    "is_padfn",
    "reverse_causal",
    "same",
    "valid",
]


def create_from_padfn(
    padding: PadFn | Sequence[PadFn],
    kernel: int | Sequence[int],
    rate: int | Sequence[int],
    n: int,
) -> tuple[tuple[int, int], ...]:
    """One ``(low, high)`` pair per spatial dimension from padding function(s).

    Args:
      padding: a padding function, or a sequence of 1 or ``n`` of them.
      kernel: kernel size, an int or a sequence of 1 or ``n`` ints.
      rate: dilation rate, an int or a sequence of 1 or ``n`` ints.
      n: the number of spatial dimensions.

    Returns:
      ``n`` values ``padding[i]((kernel[i] - 1) * rate[i] + 1)``.

    Raises:
      TypeError: a sequence argument of a length other than 1 or ``n``.

    >>> import pax.hk as hk
    >>> hk.pad.create_from_padfn([hk.pad.same, hk.pad.full], 3, 1, 2)
    ((1, 1), (2, 2))
    """
    kernels = replicate(kernel, n, "kernel")
    rates = replicate(rate, n, "rate")
    fns = replicate(padding, n, "padding")
    return tuple(fn((k - 1) * r + 1) for fn, k, r in zip(fns, kernels, rates))


create = create_from_padfn  # Haiku's legacy name


def create_from_tuple(
    padding: tuple[int, int] | Sequence[tuple[int, int]], n: int
) -> tuple[tuple[int, int], ...]:
    """One ``(low, high)`` pair per spatial dimension from explicit pair(s).

    Args:
      padding: a ``(low, high)`` pair of ints (used for every dimension), or a
        sequence of 1 or ``n`` pairs.
      n: the number of spatial dimensions.

    Raises:
      ValueError: ``padding`` is empty.
      TypeError: a sequence of pairs of a length other than 1 or ``n``.

    >>> import pax.hk as hk
    >>> hk.pad.create_from_tuple([(0, 1), (2, 3)], 2)
    ((0, 1), (2, 3))
    """
    if not padding:
        raise ValueError("`padding` must not be empty")
    if isinstance(padding[0], int):
        return (tuple(padding),) * n
    if len(padding) == 1:
        return tuple(padding) * n
    if len(padding) != n:
        raise TypeError(
            f"Padding {padding} must be a Tuple[int, int] or sequence of length 1 "
            f"or sequence of length {n} (one (low, high) pair per dimension)."
        )
    return tuple(padding)


def is_padfn(padding: Any) -> bool:
    """Whether ``padding`` is a padding function or a sequence of them (Haiku
    looks at the first element only).

    >>> import pax.hk as hk
    >>> hk.pad.is_padfn(hk.pad.same), hk.pad.is_padfn([hk.pad.causal])
    (True, True)
    >>> hk.pad.is_padfn("SAME"), hk.pad.is_padfn([(1, 1)])
    (False, False)
    """
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        if not padding:
            return False
        padding = padding[0]
    return callable(padding)
