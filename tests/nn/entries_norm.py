"""Registry entries: batch/layer/instance/RMS/group norm and EMA."""

import jax

import pax

from .registry import Entry


def normal(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype) * 2 + 1,)


ENTRIES = [
    Entry(
        "BatchNorm1D", lambda k: pax.BatchNorm1D(3), normal((2, 5, 3)), stateful=True
    ),
    Entry(
        "BatchNorm2D-NCHW",
        lambda k: pax.BatchNorm2D(3, data_format="NCHW"),
        normal((2, 3, 4, 4)),
        stateful=True,
    ),
    Entry("BatchNorm-eval", lambda k: pax.BatchNorm(4).eval(), normal((3, 4))),
    Entry("LayerNorm", lambda k: pax.LayerNorm(4), normal((2, 3, 4))),
    Entry(
        "LayerNorm-slice",
        lambda k: pax.LayerNorm(4, axis=slice(1, None)),
        normal((2, 3, 4)),
    ),
    Entry("InstanceNorm", lambda k: pax.InstanceNorm(3), normal((2, 4, 4, 3))),
    Entry("RMSNorm", lambda k: pax.RMSNorm(4), normal((2, 4))),
    Entry(
        "GroupNorm-NCW",
        lambda k: pax.GroupNorm(2, 4, data_format="NCW"),
        normal((2, 4, 5)),
    ),
    # EMA has no trainable parameters; a training-mode call updates state
    # (an eval-mode call changes nothing: the vmap check applies). Its
    # average keeps the dtype of `initial_value` (the state), whatever the
    # dtype of the values fed in, so the input-dtype checks do not apply.
    Entry(
        "EMA",
        lambda k: pax.EMA(jax.numpy.zeros((2, 3)), 0.9, debias=True),
        normal((2, 3)),
        stateful=True,
        differentiable=False,
        float_input=False,
    ),
]
