"""Argument helpers of the convolution family: Haiku's ``replicate`` rule and
``hk.get_channel_index`` (``pax.nn.channel_index``, the one ``data_format``
parser)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import nn

__all__ = ["get_channel_index", "replicate"]


def get_channel_index(data_format: str) -> int:
    """The channel axis a data format names: ``1`` (channels first) or ``-1``.

    :func:`pax.nn.channel_index`, the parser every ``pax.nn`` and ``pax.hk``
    layer uses, with Haiku's grammar: ``"channels_first"``,
    ``"channels_last"``, ``"NC"`` + letters other than ``"C"`` (``"NCHW"``,
    ``"NC..."``, ``"NC"``) for channels first, ``"N"`` + letters other than
    ``"C"`` + ``"C"`` (``"NWC"``, ``"NHWC"``, ``"N...C"``) and sequence
    formats ``"BT...D"`` / ``"TB...D"`` for channels last.

    Raises:
      ValueError: any other string.

    >>> import pax.hk as hk
    >>> hk.get_channel_index("NCHW"), hk.get_channel_index("NDHWC")
    (1, -1)
    >>> hk.get_channel_index("BTHWD")
    -1
    """
    return nn.channel_index(data_format)


def replicate(value: Any, n: int, name: str) -> tuple[Any, ...]:
    """Haiku's rule for per-dimension arguments: a scalar (or a string) is
    repeated ``n`` times, a 1-sequence too, an ``n``-sequence is kept.

    Values are not checked here; the ``pax.nn`` layer that computes checks
    them.

    Raises:
      TypeError: a sequence of another length.

    >>> replicate(3, 2, "stride"), replicate([2], 3, "rate")
    ((3, 3), (2, 2, 2))
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return (value,) * n
    if len(value) == 1:
        return tuple(value) * n
    if len(value) == n:
        return tuple(value)
    raise TypeError(
        f"`{name}` must be a scalar or sequence of length 1 or sequence of "
        f"length {n}, got {value!r}"
    )
