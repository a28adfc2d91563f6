"""Argument helpers of the convolution family: Haiku's ``replicate`` rule and
``hk.get_channel_index``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["get_channel_index", "replicate"]

# Haiku's spellings: "NC" then no other "C" (channels first), "N" ... "C"
# (channels last), and sequence formats "BT...D" / "TB...D" (channels last).
_FIRST = re.compile(r"^NC[^C]*$")
_LAST = re.compile(r"^N[^C]*C$")
_SEQUENTIAL = re.compile(r"^(BT|TB)[^D]*D$")


def get_channel_index(data_format: str) -> int:
    """The channel axis a data format names: ``1`` (channels first) or ``-1``.

    Accepted (as in Haiku): ``"channels_first"``, ``"channels_last"``, spatial
    formats starting ``"NC"`` with no other ``C`` (``"NCHW"``, ``"NC..."``) for
    channels first, spatial formats ``"N...C"`` (``"NWC"``, ``"NHWC"``) and
    sequence formats ``"BT...D"`` / ``"TB...D"`` for channels last.

    Raises:
      ValueError: any other string.

    >>> import pax.hk as hk
    >>> hk.get_channel_index("NCHW"), hk.get_channel_index("NDHWC")
    (1, -1)
    >>> hk.get_channel_index("BTHWD")
    -1
    """
    if data_format == "channels_first":
        return 1
    if data_format == "channels_last":
        return -1
    if isinstance(data_format, str):
        if _FIRST.match(data_format):
            return 1
        if _LAST.match(data_format) or _SEQUENTIAL.match(data_format):
            return -1
    raise ValueError(
        f"Unable to extract channel information from data_format "
        f"{data_format!r}: expected 'channels_first', 'channels_last', a "
        "spatial format such as 'NCHW' (channels first) or 'NHWC' (channels "
        "last), or a sequence format such as 'BTHWD'."
    )


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
        f"`{name}` must be a scalar or a sequence of length 1 or {n}, got {value!r}"
    )
