"""The one ``data_format`` parser of PAX: every layer family with a
``data_format`` argument (convolutions, transposed and depthwise
convolutions, batch/group/instance normalization) in ``pax.nn`` and in
``pax.hk`` reads it with :func:`channel_index`.

The grammar is Haiku's ``get_channel_index`` (checked against dm-haiku
0.0.17), so a string means the same thing to ``pax.nn`` and to ``pax.hk``:

==========================  ===============================  ========
spelling                    examples                         channels
==========================  ===============================  ========
``"channels_last"``                                          last
``"channels_first"``                                         first
``NC`` + non-``C`` letters  ``NC``, ``NCW``, ``NCHW``,       first
                            ``NCDHW``, ``NC...``
``N`` + non-``C`` + ``C``   ``NWC``, ``NHWC``, ``NDHWC``,    last
                            ``N...C``
``BT``/``TB`` + non-``D``   ``BTD``, ``TBD``, ``BTHWD``      last
+ ``D``
==========================  ===============================  ========

The channels-first rule is tried before the channels-last one, so ``"NC"``
(which fits both) is channels first. Anything else (``"CHW"``, ``"HWC"``,
``"NCHWC"``, lower case) is refused.
"""

from __future__ import annotations

import re

__all__ = ["channel_index"]

_CHANNELS_FIRST = re.compile(r"NC[^C]*")
_CHANNELS_LAST = re.compile(r"N[^C]*C")
_SEQUENCE = re.compile(r"(BT|TB)[^D]*D")
_NAMED = {"channels_last": -1, "channels_first": 1}
_LETTERS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
_GRAMMAR = (
    "'N', letters other than 'C', then 'C' is channels last ('NWC', 'NHWC', "
    "'NDHWC', 'N...C'); 'NC' then letters other than 'C' is channels first "
    "('NCW', 'NCHW', 'NCDHW', 'NC...', 'NC'); 'BT' or 'TB', letters other than "
    "'D', then 'D' is a channels-last sequence format ('BTD', 'TBD', 'BTHWD')"
)


def _accepted(num_spatial_dims: int | None) -> str:
    """What an error message lists as accepted."""
    if num_spatial_dims is None:
        return (
            "`data_format` must be 'channels_last', 'channels_first' or a "
            f"format string: {_GRAMMAR}"
        )
    n = num_spatial_dims
    letters = "".join(f"{f!r}, " for f in _LETTERS.get(n, ()))
    return (
        f"`data_format` must be one of 'channels_last', 'channels_first', "
        f"{letters}'N...C', 'NC...', or another format of {n + 2} letters "
        f"(batch, {n} spatial, channels): {_GRAMMAR}"
    )


def channel_index(
    data_format: str, owner: str | None = None, *, num_spatial_dims: int | None = None
) -> int:
    """The channel axis a ``data_format`` names: ``-1`` (last) or ``1`` (first).

    The single parser behind every ``data_format`` argument of ``pax.nn`` and
    ``pax.hk`` (``hk.get_channel_index`` is this function). It accepts
    exactly the spellings Haiku accepts, with Haiku's meaning:
    ``"channels_last"``/``"channels_first"``; ``"N"`` + letters other than
    ``"C"`` + ``"C"`` (``"NWC"``, ``"NHWC"``, ``"NDHWC"``, ``"N...C"``:
    channels last); ``"NC"`` + letters other than ``"C"`` (``"NCW"``,
    ``"NCHW"``, ``"NCDHW"``, ``"NC..."``, ``"NC"``: channels first, this rule
    first); ``"BT"``/``"TB"`` + letters other than ``"D"`` + ``"D"``
    (``"BTHWD"``: channels last).

    Args:
      data_format: the string to read.
      owner: how errors name the caller, e.g. ``"Conv2D"``.
      num_spatial_dims: for a layer of a known rank (``pax.nn.Conv2D``,
        ``BatchNorm2D``...): a format spelled letter by letter must then have
        ``num_spatial_dims + 2`` letters (``"NCW"`` is refused by a 2-d
        layer); ``"channels_last"``/``"channels_first"`` and formats with
        ``"..."`` fit any rank. ``None`` (Haiku's rule, used by ``pax.hk``):
        no rank check.

    Returns:
      ``-1`` for channels-last formats, ``1`` for channels-first ones: the
      channel axis of a batched input ``[N, ..., C]`` or ``[N, C, ...]``.

    Raises:
      TypeError: ``data_format`` is not a string.
      ValueError: an unknown spelling (the message names ``owner`` and lists
        what is accepted), or one of the wrong length for
        ``num_spatial_dims``.

    >>> import pax
    >>> pax.nn.channel_index("NHWC"), pax.nn.channel_index("NCHW")
    (-1, 1)
    >>> pax.nn.channel_index("NC..."), pax.nn.channel_index("BTHWD")
    (1, -1)
    >>> pax.nn.channel_index("NCW", "Conv2D", num_spatial_dims=2)
    Traceback (most recent call last):
    ...
    ValueError: Conv2D: unknown `data_format` 'NCW' for 2 spatial dimension(s) ...
    """
    prefix = f"{owner}: " if owner else ""
    if not isinstance(data_format, str):
        raise TypeError(
            f"{prefix}`data_format` must be a string such as 'channels_last' or "
            f"'channels_first', got {data_format!r} ({type(data_format).__name__})"
        )
    index = _NAMED.get(data_format)
    if index is None:
        if _CHANNELS_FIRST.fullmatch(data_format):
            index = 1
        elif _CHANNELS_LAST.fullmatch(data_format) or _SEQUENCE.fullmatch(data_format):
            index = -1
        else:
            rank = (
                ""
                if num_spatial_dims is None
                else f" for {num_spatial_dims} spatial dimension(s)"
            )
            raise ValueError(
                f"{prefix}unknown `data_format` {data_format!r}{rank}. Unable to "
                f"extract channel information from {data_format!r}: "
                f"{_accepted(num_spatial_dims)}."
            )
        if (
            num_spatial_dims is not None
            and "..." not in data_format
            and len(data_format) != num_spatial_dims + 2
        ):
            raise ValueError(
                f"{prefix}unknown `data_format` {data_format!r} for "
                f"{num_spatial_dims} spatial dimension(s) ({len(data_format)} "
                f"letters, expected {num_spatial_dims + 2}): "
                f"{_accepted(num_spatial_dims)}."
            )
    return index
