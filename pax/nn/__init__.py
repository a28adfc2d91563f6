"""``pax.nn``: layers as pytree modules, one family per file.

Every public layer class here is also exported at the top level (``pax.X``).
"""

from .._core.rng import RngSeq as RngSeq
from ._batch_apply import BatchApply as BatchApply
from ._batch_apply import expand_apply as expand_apply
from ._containers import Identity as Identity
from ._containers import Lambda as Lambda
from ._containers import Sequential as Sequential
from ._dropout import Dropout as Dropout
from ._dropout import dropout as dropout
from ._embed import Embed as Embed
from ._linear import Bias as Bias
from ._linear import Linear as Linear
from ._pool import AvgPool as AvgPool
from ._pool import MaxPool as MaxPool
from ._pool import avg_pool as avg_pool
from ._pool import max_pool as max_pool
from ._reshape import Flatten as Flatten
from ._reshape import Reshape as Reshape

__all__ = [
    "AvgPool",
    "BatchApply",
    "Bias",
    "Dropout",
    "Embed",
    "Flatten",
    "Identity",
    "Lambda",
    "Linear",
    "MaxPool",
    "Reshape",
    "RngSeq",
    "Sequential",
    "avg_pool",
    "dropout",
    "expand_apply",
    "max_pool",
]
