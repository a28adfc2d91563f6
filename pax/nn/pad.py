"""Padding functions for convolutions, Haiku's ``hk.pad`` set.

Each function maps an *effective* kernel size ``(k - 1) * rate + 1`` to a
``(low, high)`` pair. Pass one as a convolution's ``padding`` (or a sequence
of them, one per spatial axis):

>>> import pax
>>> pax.nn.pad.causal(3)
(2, 0)
>>> pax.Conv1D(1, 1, 3, padding=pax.nn.pad.causal).padding
((2, 0),)
"""

from . import _pad
from ._pad import causal as causal
from ._pad import full as full
from ._pad import reverse_causal as reverse_causal
from ._pad import same as same
from ._pad import valid as valid

#: A padding function: ``pad_fn(effective_kernel_size) -> (before, after)``.
PadFn = _pad.PadFn

__all__ = ["PadFn", "causal", "full", "reverse_causal", "same", "valid"]
