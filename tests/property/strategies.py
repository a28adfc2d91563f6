"""Hypothesis strategies: one per module family, each drawing a :class:`Case`.

A case is a constructor (``make``), the call's arguments and what must
happen: either the output's shapes and dtypes (``expect``, a pytree of
``jax.ShapeDtypeStruct``) or :data:`ERROR`, a ``ValueError``/``TypeError``
at construction or call whose message names one of ``names``.

Every expectation is computed here, independently of the code under test:
output sizes from the convolution / pooling formulas written out below, dtypes
from DESIGN §8 ("Integer input": a layer that computes in floating point
returns float32 for integer input; shape-only layers and ``MaxPool`` keep the
input's dtype).

Shapes come from small fixed sets (``st.sampled_from``): every new shape is a
new XLA compilation, and the default run must stay fast.

Known failures in files owned by others are kept out of the draws by the
``KNOWN_*`` switches below, each naming the bug; flip a switch when its bug
is fixed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import pax
import pax.nets

ERROR = "error"  # the expectation of a case that must raise a clear error

FLOATS = (jnp.float32, jnp.bfloat16, jnp.float16)
INTS = (jnp.int32, jnp.uint8)
DTYPES = FLOATS + INTS

# Bad inputs a family may be fed instead of its real input.
BAD_KINDS = ("none", "str", "rank", "channels")


@dataclasses.dataclass
class Case:
    """One drawn module and call (see the module docstring)."""

    names: tuple[str, ...]  # class names an error may name
    make: Callable[[], Any]
    args: tuple
    expect: Any  # pytree of jax.ShapeDtypeStruct, or ERROR
    train_stateful: bool = False  # call through pax.purecall (training mode)
    vmap: bool = True  # jax.vmap over a new leading axis == loop
    note: str = ""  # shown in failures
    # static keyword arguments of the call (never traced, vmapped or flipped)
    kwargs: dict = dataclasses.field(default_factory=dict)
    # a plain call (no purecall) raises pax.MutationError starting with the
    # module's repr (stateful modules in training mode)
    plain_raises: bool = False
    # (module, new module, output) -> [(label, expected, actual[, dtype])]:
    # values computed independently of the code under test (hand formulas
    # with the module's own arrays), compared within the tolerance of
    # actual's dtype (or of the optional dtype the value was computed in)
    reference: Callable[[Any, Any, Any], list] | None = None
    # the least precise dtype the computation goes through, if less precise
    # than the inputs (an EMA stores bfloat16 averages of float32 values; jit
    # may skip that rounding: XLA allows excess precision)
    precision: Any = None

    def __repr__(self):
        def show(a):
            if hasattr(a, "shape") and hasattr(a, "dtype"):
                return f"{a.dtype}{list(a.shape)}"
            return repr(a)

        args = jax.tree_util.tree_map(show, self.args)
        kwargs = f", kwargs={self.kwargs}" if self.kwargs else ""
        return f"Case({self.note}, args={args}{kwargs}, expect={self.expect})"


def sds(shape, dtype):
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


def fdt(dtype):
    """The dtype a floating-point layer returns for input of ``dtype``."""
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32


def array(seed: int, shape, dtype, low=0, high=6) -> jax.Array:
    """Input values from numpy (jax.random compiles once per shape)."""
    rng = np.random.default_rng(seed)
    if jnp.issubdtype(dtype, jnp.integer):
        return jnp.asarray(rng.integers(low, high, size=shape), dtype)
    if dtype == jnp.bool_:
        return jnp.asarray(rng.random(size=shape) < 0.5)
    return jnp.asarray(rng.normal(size=shape), dtype)


def key(seed: int) -> jax.Array:
    return jax.random.PRNGKey(seed)


@st.composite
def input_dtype(draw, floats_only=False):
    return draw(st.sampled_from(FLOATS if floats_only else DTYPES))


@st.composite
def int_range(draw, dtype):
    """Small ints mostly; sometimes up to 255 (uint8 images: overflow)."""
    if jnp.issubdtype(dtype, jnp.integer):
        return draw(st.sampled_from([6, 6, 256]))
    return 6


def bad_input(kind: str, x: jax.Array, rank_shape, channel_shape):
    """``x`` spoiled: None, a string, a wrong rank or a wrong channel count."""
    if kind == "none":
        return None
    if kind == "str":
        return "not an array"
    if kind == "rank":
        return jnp.zeros(rank_shape, x.dtype)
    return jnp.zeros(channel_shape, x.dtype)


@st.composite
def maybe_bad(draw, kinds=BAD_KINDS):
    """None (a good input) most of the time, else one kind of bad input."""
    return draw(st.sampled_from((None,) * 6 + tuple(kinds)))


# --------------------------------------------------------------------------
# Output-size formulas (written here, independent of pax)


def conv_out(size, kernel, stride, rate, padding):
    """Output length of a convolution along one axis."""
    ek = (kernel - 1) * rate + 1
    if padding == "SAME":
        return -(-size // stride)
    if padding == "VALID":
        return max(0, -(-(size - ek + 1) // stride))
    lo, hi = padding
    return max(0, (size + lo + hi - ek) // stride + 1)


def pad_pair(padding, kernel, rate):
    """A padding entry as drawn (a name, a pair, or a named function) resolved
    to what :func:`conv_out` takes."""
    ek = (kernel - 1) * rate + 1
    if padding in ("SAME", "VALID"):
        return padding
    if padding == "causal":
        return (ek - 1, 0)
    if padding == "full":
        return (ek - 1, ek - 1)
    return padding


PAD_FNS = {"causal": pax.nn.pad.causal, "full": pax.nn.pad.full}


def pad_arg(p):
    return PAD_FNS.get(p, p)


def channels_layout(n, channels_last, batch, spatial, channels):
    shape = (*spatial, channels) if channels_last else (channels, *spatial)
    return ((batch,) if batch else ()) + tuple(shape)


FORMATS = {
    1: ("NWC", "NCW"),
    2: ("NHWC", "NCHW"),
    3: ("NDHWC", "NCDHW"),
}


@st.composite
def data_format(draw, n):
    fmt = draw(st.sampled_from(FORMATS[n] + ("channels_last", "channels_first")))
    return fmt, fmt in ("channels_last", FORMATS[n][0])


@st.composite
def spatial_config(draw, n, paddings=("SAME", "VALID", (1, 0), "causal", "full")):
    kernel = tuple(draw(st.sampled_from([1, 2, 3])) for _ in range(n))
    stride = tuple(draw(st.sampled_from([1, 2])) for _ in range(n))
    rate = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n))
    padding = draw(st.sampled_from(paddings))
    spatial = tuple(draw(st.sampled_from([1, 3, 4])) for _ in range(n))
    return kernel, stride, rate, padding, spatial


def compact(t):
    """An n-tuple of equal ints as one int (both spellings get exercised)."""
    return t[0] if len(set(t)) == 1 else t


# --------------------------------------------------------------------------
# Dense


@st.composite
def linear(draw):
    in_dim = draw(st.sampled_from([1, 3, 4]))
    out_dim = draw(st.sampled_from([1, 2, 5]))
    with_bias = draw(st.booleans())
    lead = draw(st.sampled_from([(), (1,), (2,), (2, 3)]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, (*lead, in_dim), dtype, high=draw(int_range(dtype)))
    bad = draw(maybe_bad())
    expect = sds((*lead, out_dim), fdt(dtype))
    if bad:
        x = bad_input(bad, x, (), (*lead, in_dim + 1))
        expect = ERROR
    return Case(
        ("Linear",),
        lambda: pax.Linear(in_dim, out_dim, with_bias, rng_key=key(seed)),
        (x,),
        expect,
        note=f"Linear({in_dim}, {out_dim}, {with_bias})",
    )


@st.composite
def bias(draw):
    output_size = draw(st.sampled_from([(3,), (2, 3)]))
    rank = len(output_size) + 1
    bias_dims = draw(st.sampled_from([None, [], [-1], [1], [rank]]))
    batch = draw(st.sampled_from([1, 2]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, (batch, *output_size), dtype)
    expect = sds(x.shape, fdt(dtype))
    if bias_dims is not None and any(not -rank <= d < rank for d in bias_dims):
        expect = ERROR
    bad = draw(maybe_bad(("none", "str", "channels")))
    if bad:
        x = bad_input(bad, x, (), (batch, *output_size[:-1], output_size[-1] + 1))
        expect = ERROR
    return Case(
        ("Bias",),
        lambda: pax.Bias(output_size, bias_dims, rng_key=key(seed)),
        (x,),
        expect,
        note=f"Bias({output_size}, {bias_dims})",
    )


# --------------------------------------------------------------------------
# Convolutions


@st.composite
def conv(draw):
    n = draw(st.sampled_from([1, 1, 2, 2, 3]))
    cin, cout = draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([1, 2, 4]))
    groups = draw(st.sampled_from([1, 1, 2]))
    kernel, stride, rate, padding, spatial = draw(spatial_config(n))
    fmt, last = draw(data_format(n))
    with_bias = draw(st.booleans())
    batch = draw(st.sampled_from([None, 1, 2]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, channels_layout(n, last, batch, spatial, cin), dtype)
    out_spatial = [
        conv_out(L, k, s, r, pad_pair(padding, k, r))
        for L, k, s, r in zip(spatial, kernel, stride, rate)
    ]
    expect = sds(channels_layout(n, last, batch, out_spatial, cout), fdt(dtype))
    if cin % groups or cout % groups:
        expect = ERROR
    bad = draw(maybe_bad())
    if bad:
        rank_shape = (1,) * (n + 3) if batch else (1,) * n
        x = bad_input(
            bad, x, rank_shape, channels_layout(n, last, batch, spatial, cin + 1)
        )
        expect = ERROR
    k_arg, s_arg, r_arg = compact(kernel), compact(stride), compact(rate)

    def make():
        return pax.ConvND(
            n,
            cin,
            cout,
            k_arg,
            s_arg,
            r_arg,
            pad_arg(padding),
            with_bias,
            data_format=fmt,
            feature_group_count=groups,
            rng_key=key(seed),
        )

    note = (
        f"ConvND({n}, {cin}, {cout}, {k_arg}, {s_arg}, {r_arg}, {padding!r}, "
        f"{with_bias}, {fmt!r}, groups={groups})"
    )
    return Case(("ConvND",), make, (x,), expect, note=note)


def transpose_out(size, kernel, stride, padding):
    if padding == "SAME":
        return size * stride
    if padding == "VALID":
        return size * stride + max(kernel - stride, 0)
    lo, hi = padding
    return max(0, (size - 1) * stride + lo + hi - kernel + 2)


def transpose_input_ok(size, out, kernel, stride, padding):
    """Whether an input of ``size`` can give ``output_shape`` ``out``."""
    if padding == "VALID":
        return size == (out - kernel) // stride + 1
    return size == -(-out // stride)


@st.composite
def conv_transpose(draw):
    n = draw(st.sampled_from([1, 2]))
    cin, cout = draw(st.sampled_from([1, 2, 4])), draw(st.sampled_from([1, 2, 4]))
    kernel = tuple(draw(st.sampled_from([1, 2, 3])) for _ in range(n))
    stride = tuple(draw(st.sampled_from([1, 2])) for _ in range(n))
    padding = draw(st.sampled_from(["SAME", "VALID", (1, 1), (0, 2)]))
    spatial = tuple(draw(st.sampled_from([1, 2, 3])) for _ in range(n))
    use_output_shape = draw(st.booleans()) and isinstance(padding, str)
    fmt, last = draw(data_format(n))
    with_bias = draw(st.booleans())
    batch = draw(st.sampled_from([None, 1, 2]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, channels_layout(n, last, batch, spatial, cin), dtype)
    expect_ok = True
    if use_output_shape:
        out_spatial = tuple(draw(st.sampled_from([2, 3, 4, 5])) for _ in range(n))
        expect_ok = all(
            transpose_input_ok(L, o, k, s, padding)
            for L, o, k, s in zip(spatial, out_spatial, kernel, stride)
        )
        output_shape = out_spatial
    else:
        out_spatial = [
            transpose_out(L, k, s, padding) for L, k, s in zip(spatial, kernel, stride)
        ]
        output_shape = None
    expect = sds(channels_layout(n, last, batch, out_spatial, cout), fdt(dtype))
    if not expect_ok:
        expect = ERROR
    bad = draw(maybe_bad())
    if bad:
        rank_shape = (1,) * (n + 3) if batch else (1,) * n
        x = bad_input(
            bad, x, rank_shape, channels_layout(n, last, batch, spatial, cin + 1)
        )
        expect = ERROR
    pad = padding if isinstance(padding, str) else (padding,) * n

    def make():
        return pax.ConvNDTranspose(
            n,
            cin,
            cout,
            compact(kernel),
            compact(stride),
            output_shape,
            pad,
            with_bias,
            data_format=fmt,
            rng_key=key(seed),
        )

    note = (
        f"ConvNDTranspose({n}, {cin}, {cout}, {kernel}, {stride}, {output_shape}, "
        f"{pad!r}, {with_bias}, {fmt!r})"
    )
    return Case(("ConvNDTranspose",), make, (x,), expect, note=note)


@st.composite
def depthwise(draw):
    n = draw(st.sampled_from([1, 2]))
    cin, mult = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2]))
    kernel, stride, rate, padding, spatial = draw(spatial_config(n))
    fmt, last = draw(data_format(n))
    with_bias = draw(st.booleans())
    batch = draw(st.sampled_from([None, 1, 2]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, channels_layout(n, last, batch, spatial, cin), dtype)
    out_spatial = [
        conv_out(L, k, s, r, pad_pair(padding, k, r))
        for L, k, s, r in zip(spatial, kernel, stride, rate)
    ]
    expect = sds(channels_layout(n, last, batch, out_spatial, cin * mult), fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        rank_shape = (1,) * (n + 3) if batch else (1,) * n
        x = bad_input(
            bad, x, rank_shape, channels_layout(n, last, batch, spatial, cin + 1)
        )
        expect = ERROR

    def make():
        return pax.DepthwiseConvND(
            n,
            cin,
            mult,
            compact(kernel),
            compact(stride),
            compact(rate),
            pad_arg(padding),
            with_bias,
            data_format=fmt,
            rng_key=key(seed),
        )

    note = (
        f"DepthwiseConvND({n}, {cin}, {mult}, {kernel}, {stride}, {rate}, "
        f"{padding!r}, {with_bias}, {fmt!r})"
    )
    return Case(("DepthwiseConvND",), make, (x,), expect, note=note)


@st.composite
def separable(draw):
    cin, mult = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2]))
    kernel, stride, _, padding, spatial = draw(
        spatial_config(2, paddings=("SAME", "VALID", (1, 0)))
    )
    fmt, last = draw(data_format(2))
    with_bias = draw(st.booleans())
    batch = draw(st.sampled_from([None, 1, 2]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, channels_layout(2, last, batch, spatial, cin), dtype)
    (kh, kw), (sh, sw), (h, w) = kernel, stride, spatial
    # conv1: kernel (kh, 1), the stride; conv2: kernel (1, kw), stride 1
    h2 = conv_out(conv_out(h, kh, sh, 1, padding), 1, 1, 1, padding)
    w2 = conv_out(conv_out(w, 1, sw, 1, padding), kw, 1, 1, padding)
    expect = sds(channels_layout(2, last, batch, (h2, w2), cin * mult), fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        rank_shape = (1,) * 5 if batch else (1,) * 2
        x = bad_input(
            bad, x, rank_shape, channels_layout(2, last, batch, spatial, cin + 1)
        )
        expect = ERROR

    def make():
        return pax.SeparableDepthwiseConv2D(
            cin,
            mult,
            kernel,
            compact(stride),
            padding,
            with_bias,
            data_format=fmt,
            rng_key=key(seed),
        )

    note = (
        f"SeparableDepthwiseConv2D({cin}, {mult}, {kernel}, {stride}, {padding!r}, "
        f"{with_bias}, {fmt!r})"
    )
    return Case(("SeparableDepthwiseConv2D",), make, (x,), expect, note=note)


# --------------------------------------------------------------------------
# Pooling, reshaping


def pool_full(size, ndim, channel_axis):
    """A window/stride argument, one entry per input axis (Haiku's rule)."""
    if isinstance(size, int):
        channel = None if channel_axis is None else channel_axis % ndim
        return (1,) + tuple(1 if d == channel else size for d in range(1, ndim))
    return (1,) * (ndim - len(size)) + tuple(size)


@st.composite
def pool(draw):
    kind = draw(st.sampled_from(["AvgPool", "MaxPool"]))
    shape = draw(st.sampled_from([(2, 5, 3), (1, 4, 4, 2), (2, 3), (4,)]))
    ndim = len(shape)
    channel_axis = draw(st.sampled_from([-1, 1, None]))
    window = draw(st.sampled_from([1, 2, 3, (2, 1), (1, 2, 2, 1)]))
    strides = draw(st.sampled_from([1, 2, (2, 1)]))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype, high=draw(int_range(dtype)))
    out_dtype = fdt(dtype) if kind == "AvgPool" else dtype
    too_long = any(isinstance(a, tuple) and len(a) > ndim for a in (window, strides))
    if too_long or (channel_axis is not None and channel_axis >= ndim):
        expect = ERROR
    else:
        w = pool_full(window, ndim, channel_axis)
        s = pool_full(strides, ndim, channel_axis)
        out = [
            -(-n // st_) if padding == "SAME" else max(0, -(-(n - k + 1) // st_))
            for n, k, st_ in zip(shape, w, s)
        ]
        expect = sds(out, out_dtype)
    bad = draw(maybe_bad(("none", "str")))
    if bad:
        x = bad_input(bad, x, (), shape)
        expect = ERROR
    cls = getattr(pax, kind)
    # int windows expand to the input's rank, which under vmap is the
    # per-example rank: vmap == loop still holds (the loop sees that rank too)
    return Case(
        (kind,),
        lambda: cls(window, strides, padding, channel_axis),
        (x,),
        expect,
        note=f"{kind}({window}, {strides}, {padding!r}, {channel_axis})",
    )


@st.composite
def reshape(draw):
    shape = draw(st.sampled_from([(2, 3, 4), (1, 6), (2, 2, 3), (3,)]))
    flatten = draw(st.booleans())
    preserve = draw(st.sampled_from([1, 2, -1, -2]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype)
    if flatten:
        output_shape = (-1,)
    else:
        output_shape = draw(st.sampled_from([(-1,), (12,), (3, -1), (2, 2, 3), (6,)]))
    ndim = len(shape)
    if preserve > 0:
        lead_n = preserve
        unchanged = ndim <= preserve
    else:
        lead_n = max(0, ndim + preserve)
        unchanged = False
    if unchanged:
        expect = sds(shape, dtype)
    else:
        lead, rest = shape[:lead_n], shape[lead_n:]
        size = math.prod(rest)
        known = math.prod(d for d in output_shape if d != -1)
        if -1 in output_shape and size % known == 0:
            new = tuple(size // known if d == -1 else d for d in output_shape)
            expect = sds(lead + new, dtype)
        elif -1 not in output_shape and size == known:
            expect = sds(lead + output_shape, dtype)
        else:
            expect = ERROR
    bad = draw(maybe_bad(("none", "str")))
    if bad:
        x = bad_input(bad, x, (), shape)
        expect = ERROR
    if flatten:
        return Case(
            ("Flatten",),
            lambda: pax.Flatten(preserve),
            (x,),
            expect,
            vmap=preserve < 0,  # positive preserve_dims counts the vmapped axis
            note=f"Flatten({preserve})",
        )
    return Case(
        ("Reshape",),
        lambda: pax.Reshape(output_shape, preserve),
        (x,),
        expect,
        vmap=preserve < 0,
        note=f"Reshape({output_shape}, {preserve})",
    )


# --------------------------------------------------------------------------
# Embeddings, dropout, containers


@st.composite
def embed(draw):
    vocab, dim = draw(st.sampled_from([1, 5, 10])), draw(st.sampled_from([1, 3]))
    style = draw(st.sampled_from(["ARRAY_INDEX", "ONE_HOT"]))
    shape = draw(st.sampled_from([(3,), (2, 3), ()]))
    dtype = draw(st.sampled_from([jnp.int32, jnp.uint8, jnp.float32]))
    seed = draw(st.integers(0, 2**16))
    ids = array(seed, shape, dtype, high=vocab)
    expect = sds((*shape, dim), jnp.float32)
    if not jnp.issubdtype(dtype, jnp.integer):
        expect = ERROR
    bad = draw(maybe_bad(("none", "str")))
    if bad:
        ids = bad_input(bad, ids, (), shape)
        expect = ERROR
    return Case(
        ("Embed",),
        lambda: pax.Embed(vocab, dim, lookup_style=style, rng_key=key(seed)),
        (ids,),
        expect,
        note=f"Embed({vocab}, {dim}, {style!r})",
    )


@st.composite
def dropout(draw):
    rate = draw(st.sampled_from([0.0, 0.3, 0.5]))
    shape = draw(st.sampled_from([(2, 3), (1, 4), (5,)]))
    bdims = draw(st.sampled_from([(), (0,)]))
    training = draw(st.booleans())
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype)
    expect = sds(shape, fdt(dtype))
    bad = draw(maybe_bad(("none", "str")))
    if bad:
        x = bad_input(bad, x, (), shape)
        expect = ERROR

    def make():
        d = pax.Dropout(rate, broadcast_dims=bdims, rng_key=key(seed))
        return d if training else d.eval()

    return Case(
        ("Dropout",),
        make,
        (x,),
        expect,
        train_stateful=training and rate > 0,
        vmap=not training,
        note=f"Dropout({rate}, {bdims}, training={training})",
    )


@st.composite
def containers(draw):
    kind = draw(st.sampled_from(["Sequential", "Lambda", "Identity"]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    shape = draw(st.sampled_from([(2, 3), (1, 3)]))
    x = array(seed, shape, dtype)
    if kind == "Identity":
        return Case(("Identity",), pax.Identity, (x,), sds(shape, dtype))
    if kind == "Lambda":
        return Case(
            ("Lambda",), lambda: pax.Lambda(jnp.tanh), (x,), sds(shape, fdt(dtype))
        )
    hidden = draw(st.sampled_from([2, 4]))
    drop = draw(st.booleans())

    def make():
        k1, k2 = jax.random.split(key(seed))
        layers = [pax.Linear(3, hidden, rng_key=k1), jax.nn.relu]
        layers += [pax.Linear(hidden, 2, rng_key=k2)]
        if drop:
            layers.append(pax.Dropout(0.5, rng_key=k2))
        return pax.Sequential(*layers)

    expect = sds((shape[0], 2), fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (), (shape[0], 4))
        expect = ERROR
    return Case(
        ("Linear", "Sequential"),
        make,
        (x,),
        expect,
        train_stateful=drop,
        vmap=not drop,
        note=f"Sequential(hidden={hidden}, dropout={drop})",
    )


@st.composite
def batch_apply(draw):
    num_dims = draw(st.sampled_from([1, 2, 3]))
    shape = draw(st.sampled_from([(2, 3, 4), (1, 4), (2, 1, 2, 4)]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype)
    # merges the leading num_dims axes; needs rank >= num_dims + 1 for Linear
    expect = sds((*shape[:-1], 5), fdt(dtype))
    if len(shape) < num_dims + 1:
        expect = ERROR
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (4,), (*shape[:-1], 3))
        expect = ERROR
    return Case(
        ("BatchApply", "Linear"),
        lambda: pax.BatchApply(pax.Linear(4, 5, rng_key=key(seed)), num_dims),
        (x,),
        expect,
        note=f"BatchApply(Linear(4, 5), {num_dims})",
    )


@st.composite
def layer_stack(draw):
    num_layers = draw(st.sampled_from([1, 2, 3]))
    remat = draw(st.booleans())
    drop = draw(st.booleans())
    shape = draw(st.sampled_from([(2, 4), (1, 3, 4), (4,)]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype)

    def layer(k):
        layers = [pax.Linear(4, 4, rng_key=k), jnp.tanh]
        if drop:
            layers.append(pax.Dropout(0.3, rng_key=k))
        return pax.Sequential(*layers)

    expect = sds(shape, fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (), (*shape[:-1], 3))
        expect = ERROR
    return Case(
        ("LayerStack", "Linear"),
        lambda: pax.LayerStack(layer, num_layers, remat=remat, rng_key=key(seed)),
        (x,),
        expect,
        train_stateful=drop,
        vmap=not drop,
        note=f"LayerStack({num_layers}, remat={remat}, dropout={drop})",
    )


# --------------------------------------------------------------------------
# Families owned by other helpers (norms, attention, recurrent, EMA, ...)

# Integer input to the normalization layers returns the integer dtype
# (issue 15 item 1; pax/nn/_batch_norm.py, _layer_norm.py, _group_norm.py).
# Set to False once fixed there: the draws then include integer inputs.
KNOWN_NORM_INT_INPUT = False


@st.composite
def norm(draw):
    kind = draw(
        st.sampled_from(
            ["BatchNorm", "LayerNorm", "InstanceNorm", "RMSNorm", "GroupNorm"]
        )
    )
    c = draw(st.sampled_from([2, 4]))
    shape_rest = draw(st.sampled_from([(), (3,), (3, 3)]))
    batch = draw(st.sampled_from([1, 2, 3]))
    last = draw(st.booleans()) or kind in ("LayerNorm", "RMSNorm")
    shape = (batch, *shape_rest, c) if last else (batch, c, *shape_rest)
    dtype = draw(input_dtype(floats_only=KNOWN_NORM_INT_INPUT))
    seed = draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype)
    fmt = "channels_last" if last else "channels_first"
    training = draw(st.booleans())
    expect = sds(shape, fdt(dtype))
    if kind == "BatchNorm":

        def make():
            m = pax.BatchNorm(c, data_format=fmt, rng_key=key(seed))
            return m if training else m.eval()

    elif kind == "LayerNorm":
        make = lambda: pax.LayerNorm(c, rng_key=key(seed))  # noqa: E731
    elif kind == "RMSNorm":
        make = lambda: pax.RMSNorm(c, rng_key=key(seed))  # noqa: E731
    elif kind == "InstanceNorm":
        make = lambda: pax.InstanceNorm(c, data_format=fmt, rng_key=key(seed))  # noqa: E731
    else:
        groups = draw(st.sampled_from([1, 2, 3]))
        if c % groups:
            expect = ERROR
        make = lambda: pax.GroupNorm(groups, c, data_format=fmt, rng_key=key(seed))  # noqa: E731
    bad = draw(maybe_bad(("none", "str", "channels")))
    if bad:
        wrong = (batch, *shape_rest, c + 1) if last else (batch, c + 1, *shape_rest)
        x = bad_input(bad, x, (), wrong)
        expect = ERROR
    stateful = kind == "BatchNorm" and training
    return Case(
        (kind,),
        make,
        (x,),
        expect,
        train_stateful=stateful,
        vmap=not stateful,
        note=f"{kind}({c}, {fmt!r}, training={training})",
    )


def noisy_state(core, batch, dtype, seed):
    """``core.initial_state(batch)`` in ``dtype`` plus noise (not all zeros)."""
    state = core.initial_state(batch, dtype=dtype)
    return jax.tree_util.tree_map(
        lambda s: s + array(seed, s.shape, dtype) * 0.5, state
    )


def as_float32_reference(args, dtype):
    """DESIGN §8 "Integer input": for integer ``dtype``, the output equals the
    float32 computation of the same values (the integer leaves of ``args``
    cast to float32); ``None`` (no reference) for floating input."""
    if not jnp.issubdtype(dtype, jnp.integer):
        return None

    def to_float(a):
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.integer):
            return a.astype(jnp.float32)
        return a

    float_args = jax.tree_util.tree_map(to_float, args)

    def reference(module, new, out):
        return [("float32 computation", module(*float_args), out)]

    return reference


@st.composite
def attention(draw):
    heads, key_size = draw(st.sampled_from([1, 2])), draw(st.sampled_from([2, 4]))
    q_len, k_len = draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 4]))
    q_dim, kv_dim = draw(st.sampled_from([3, 4])), draw(st.sampled_from([2, 4]))
    model = draw(st.sampled_from([None, 5]))
    batch = draw(st.sampled_from([1, 2]))
    rotary = draw(st.booleans()) and q_len == k_len
    with_mask = draw(st.booleans())
    dtype = draw(input_dtype())
    seed = draw(st.integers(0, 2**16))
    q = array(seed, (batch, q_len, q_dim), dtype)
    k = array(seed + 1, (batch, k_len, kv_dim), dtype)
    v = array(seed + 2, (batch, k_len, kv_dim), dtype)
    args = (q, k, v)
    if with_mask:
        valid = np.random.default_rng(seed).random((batch, 1, q_len, k_len)) < 0.7
        valid[..., 0] = True
        args = (*args, jnp.asarray(valid))
    out_dim = model or heads * key_size
    expect = sds((batch, q_len, out_dim), fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        q = bad_input(bad, q, (q_dim,), (batch, q_len, q_dim + 1))
        args = (q, *args[1:])
        expect = ERROR

    def make():
        return pax.MultiHeadAttention(
            heads,
            key_size,
            model_size=model,
            query_size=q_dim,
            key_input_size=kv_dim,
            value_input_size=kv_dim,
            rotary=rotary,
            rng_key=key(seed),
        )

    return Case(
        ("MultiHeadAttention",),
        make,
        args,
        expect,
        note=f"MultiHeadAttention({heads}, {key_size}, model={model}, rotary={rotary})",
        reference=as_float32_reference(args, dtype),
    )


@st.composite
def recurrent(draw):
    kind = draw(st.sampled_from(["VanillaRNN", "LSTM", "GRU"]))
    in_dim, hidden = draw(st.sampled_from([1, 3])), draw(st.sampled_from([2, 4]))
    batch = draw(st.sampled_from([1, 2]))
    dtype = draw(input_dtype())
    sdt = fdt(dtype)  # integer input: a float32 state and output
    seed = draw(st.integers(0, 2**16))
    cls = getattr(pax, kind)
    core = cls(in_dim, hidden, rng_key=key(seed))
    state = noisy_state(core, batch, sdt, seed)
    x = array(seed + 1, (batch, in_dim), dtype)
    out = sds((batch, hidden), sdt)
    state_spec = jax.tree_util.tree_map(lambda s: sds(s.shape, sdt), state)
    expect = (state_spec, out)
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (), (batch, in_dim + 1))
        expect = ERROR
    return Case(
        (kind,),
        lambda: cls(in_dim, hidden, rng_key=key(seed)),
        (state, x),
        expect,
        note=f"{kind}({in_dim}, {hidden})",
        reference=as_float32_reference((state, x), dtype),
    )


@st.composite
def conv_lstm(draw):
    n = draw(st.sampled_from([1, 2]))
    spatial = (4,) * n
    cin, cout = draw(st.sampled_from([1, 2])), draw(st.sampled_from([2, 3]))
    kernel = draw(st.sampled_from([1, 3]))
    batch = draw(st.sampled_from([1, 2]))
    dtype = draw(input_dtype())
    sdt = fdt(dtype)  # integer input: a float32 state and output
    seed = draw(st.integers(0, 2**16))
    make = lambda: pax.ConvNDLSTM(n, (*spatial, cin), cout, kernel, rng_key=key(seed))  # noqa: E731
    state = noisy_state(make(), batch, sdt, seed)
    x = array(seed + 1, (batch, *spatial, cin), dtype)
    # SAME padding: the state and output keep the spatial shape
    out = sds((batch, *spatial, cout), sdt)
    expect = (jax.tree_util.tree_map(lambda s: out, state), out)
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (batch, cin), (batch, *spatial, cin + 1))
        expect = ERROR
    return Case(
        ("ConvNDLSTM",),
        make,
        (state, x),
        expect,
        note=f"ConvNDLSTM({n}, {cin}, {cout}, {kernel})",
        reference=as_float32_reference((state, x), dtype),
    )


# --------------------------------------------------------------------------
# Moving averages and spectral normalization (both modes, update_stats)
#
# Rule: ``update_stats=None`` follows the mode. A call that stores (training
# mode, or ``update_stats=True``) goes through ``pax.purecall`` and a plain
# call raises ``pax.MutationError`` starting with the module's repr; any other
# call is a plain call that changes nothing. The expected values are numpy
# float64 formulas on the module's own arrays.


def updating(training: bool, update_stats) -> bool:
    return training if update_stats is None else update_stats


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def ema_step(ema, x):
    """Haiku's EMA update by hand: ``(average, hidden, counter)`` after one
    step of ``ema`` (an ``EMA`` over one array) with the value ``x``."""
    counter = int(ema.counter) + 1
    decay = ema.decay_rate
    if ema.warmup_length and counter <= 0:
        decay = 0.0
    hidden = f64(ema.hidden if ema.debias else ema.averages)
    hidden = decay * hidden + (1 - decay) * f64(x)
    average = hidden / (1 - ema.decay_rate**counter) if ema.debias else hidden
    return average, hidden, counter


def ema_expectations(ema, new, out, x, current, update, label=""):
    """``[(label, expected, actual, precision)]`` for one EMA call (see
    :func:`ema_step`); the average is as precise as its stored dtype."""
    stored = ema.averages.dtype
    if current:  # eval mode, update_stats=None: the stored average
        return [(f"{label}current average", f64(ema.averages), out, stored)]
    average, hidden, counter = ema_step(ema, x)
    checks = [(f"{label}average", average, out, stored)]
    if update:
        checks.append((f"{label}stored average", average, new.averages, stored))
        checks.append((f"{label}counter", np.int32(counter), new.counter))
        if ema.debias:
            checks.append((f"{label}stored hidden", hidden, new.hidden, stored))
    return checks


EMA_TEMPLATE = {"linear": {"w": (2, 3), "b": (3,)}, "step": ()}


def ema_tree(seed, dtype):
    """A value for ``EMA_TEMPLATE``: floats in ``dtype``, an int32 step."""
    return {
        "linear": {
            "w": array(seed, (2, 3), dtype),
            "b": array(seed + 1, (3,), dtype),
        },
        "step": jnp.asarray(seed % 7, jnp.int32),
    }


BAD_STATE_KINDS = ("none", "str", "channels", "flag")


@st.composite
def ema(draw):
    tree = draw(st.booleans())  # EMAParamsTree, else EMA
    training = draw(st.booleans())
    update_stats = draw(st.sampled_from([None, None, True, False]))
    debias = draw(st.booleans())
    warmup = 0 if debias else draw(st.sampled_from([0, 2]))
    decay = draw(st.sampled_from([0.0, 0.5, 0.9]))
    warm_steps = draw(st.sampled_from([0, 1, 3]))  # updates before the call
    template_dtype = draw(input_dtype(floats_only=True))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    update = updating(training, update_stats)
    current = update_stats is None and not training
    if tree:
        regex = draw(st.sampled_from(["", r".*\['b'\]"]))
        like = ema_tree(seed, template_dtype)
        x = ema_tree(seed + 2, dtype)
        # averaged leaves come back in the given leaf's dtype (the template's
        # for an integer leaf); the int32 step and ignored leaves as given
        avg_dtype = fdt(dtype) if dtype in FLOATS else template_dtype
        expect = {
            "linear": {
                "w": sds((2, 3), avg_dtype),
                "b": sds((3,), dtype if regex else avg_dtype),
            },
            "step": sds((), jnp.int32),
        }
    else:
        regex = ""
        like = array(seed, (2, 3), template_dtype)
        x = array(seed + 2, (2, 3), dtype, high=draw(int_range(dtype)))
        expect = sds((2, 3), template_dtype)  # the average keeps its dtype
    kwargs = {} if update_stats is None else {"update_stats": update_stats}
    bad = draw(maybe_bad(BAD_STATE_KINDS))
    if bad == "flag":
        kwargs = {"update_stats": 1}  # not a bool: TypeError naming the module
    elif bad and tree:
        leaf = bad_input(bad, x["linear"]["w"], (), (2, 4))
        x = {**x, "linear": {**x["linear"], "w": leaf}}
        if bad == "none":
            x = None
    elif bad:
        x = bad_input(bad, x, (), (2, 4))
    if bad:
        expect = ERROR
    name = "EMAParamsTree" if tree else "EMA"

    def make():
        if tree:
            m = pax.EMAParamsTree(
                like, decay, debias, warmup_length=warmup, ignore_regex=regex
            )
        else:
            m = pax.EMA(like, decay, debias, warmup_length=warmup)
        for i in range(warm_steps):
            v = ema_tree(seed + 10 + i, jnp.float32) if tree else like * (i + 2.0)
            m, _ = pax.purecall(m, v, update_stats=True)
        return m if training else m.eval()

    def reference(m, new, out):
        if not tree:
            return ema_expectations(m, new, out, x, current, update)
        checks = []
        pairs = jax.tree_util.tree_flatten_with_path(x)[0]
        got = dict(
            zip(
                [jax.tree_util.keystr(p) for p, _ in pairs],
                jax.tree_util.tree_leaves(out),
            )
        )
        for path, leaf in pairs:
            path = jax.tree_util.keystr(path)
            if path not in m.emas:  # ignored or integer: returned as given
                checks.append((f"{path} as given", f64(leaf), got[path]))
                continue
            sub_new = new.emas[path] if update else None
            checks += ema_expectations(
                m.emas[path], sub_new, got[path], leaf, current, update, path + " "
            )
        return checks

    note = (
        f"{name}(decay={decay}, debias={debias}, warmup={warmup}, regex={regex!r}, "
        f"warm_steps={warm_steps}, template={jnp.dtype(template_dtype).name}, "
        f"training={training})"
    )
    return Case(
        (name,),
        make,
        (x,),
        expect,
        train_stateful=update,
        vmap=not update,
        note=note,
        kwargs=kwargs,
        plain_raises=update,
        reference=reference,
        precision=template_dtype,
    )


def power_iteration(sn, value):
    """Haiku's spectral normalization by hand: ``(output, u, sigma)``."""
    w = f64(value).reshape(-1, sn.input_shape[-1])
    u = f64(sn.u0)

    def unit(a):
        return a / np.sqrt(np.sum(a * a) + sn.eps)

    for _ in range(sn.n_steps):
        v = unit(u @ w.T)
        u = unit(v @ w)
    sigma = (v @ w @ u.T)[0, 0]
    return (w / sigma).reshape(sn.input_shape), u, sigma


def sn_expectations(sn, new, out, value, update, label=""):
    if len(sn.input_shape) < 2:  # not a matrix: returned unchanged
        return [(f"{label}value unchanged", f64(value), out)]
    w_bar, u, sigma = power_iteration(sn, value)
    checks = [(f"{label}output", w_bar, out)]
    if update:
        checks += [(f"{label}u0", u, new.u0), (f"{label}sigma", sigma, new.sigma)]
    return checks


SN_TEMPLATE = {"linear": {"w": (3, 2), "b": (2,)}, "conv": {"w": (2, 2, 3)}}


def sn_tree(seed, dtype):
    return {
        "linear": {
            "w": array(seed, (3, 2), dtype),
            "b": array(seed + 1, (2,), dtype),
        },
        "conv": {"w": array(seed + 2, (2, 2, 3), dtype)},
    }


@st.composite
def spectral_norm(draw):
    tree = draw(st.booleans())  # SNParamsTree, else SpectralNorm
    training = draw(st.booleans())
    update_stats = draw(st.sampled_from([None, None, True, False]))
    n_steps = draw(st.sampled_from([1, 2]))
    eps = draw(st.sampled_from([1e-4, 0.0]))
    warm_steps = draw(st.sampled_from([0, 1]))
    seed = draw(st.integers(0, 2**16))
    update = updating(training, update_stats)
    if tree:
        regex = draw(st.sampled_from(["", r"\['conv'\]"]))
        dtype = draw(input_dtype(floats_only=True))
        x = sn_tree(seed + 3, dtype)
        expect = jax.tree_util.tree_map(lambda a: sds(a.shape, a.dtype), x)
    else:
        regex = ""
        shape = draw(st.sampled_from([(3, 2), (2, 4), (2, 2, 3), (4,)]))
        dtype = draw(input_dtype())
        # integer matrices from 1 up: an all-zero matrix has no direction
        x = array(seed + 3, shape, dtype, low=1, high=draw(int_range(dtype)))
        # a rank < 2 value is returned unchanged, integers included
        expect = sds(shape, fdt(dtype) if len(shape) >= 2 else dtype)
    kwargs = {} if update_stats is None else {"update_stats": update_stats}
    bad = draw(maybe_bad(BAD_STATE_KINDS))
    if bad == "flag":
        kwargs = {"update_stats": "yes"}
    elif bad and tree:
        x = (
            None
            if bad == "none"
            else {**x, "conv": {"w": bad_input(bad, x["conv"]["w"], (), (2, 2, 4))}}
        )
    elif bad:
        x = bad_input(bad, x, (), (*x.shape[:-1], x.shape[-1] + 1))
    if bad:
        expect = ERROR
    name = "SNParamsTree" if tree else "SpectralNorm"

    def make():
        if tree:
            m = pax.SNParamsTree(
                sn_tree(seed, jnp.float32), eps, n_steps, regex, rng_key=key(seed)
            )
            warm = sn_tree(seed + 10, jnp.float32)
        else:
            m = pax.SpectralNorm(shape, eps, n_steps, rng_key=key(seed))
            warm = array(seed + 10, shape, jnp.float32)
        for _ in range(warm_steps):
            m, _ = pax.purecall(m, warm, update_stats=True)
        return m if training else m.eval()

    def reference(m, new, out):
        if not tree:
            return sn_expectations(m, new, out, x, update)
        checks = []
        pairs = jax.tree_util.tree_flatten_with_path(x)[0]
        got = jax.tree_util.tree_leaves(out)
        for (path, leaf), result in zip(pairs, got):
            path = jax.tree_util.keystr(path)
            if path not in m.norms:  # vectors and ignored leaves: as given
                checks.append((f"{path} as given", f64(leaf), result))
                continue
            sub_new = new.norms[path] if update else None
            checks += sn_expectations(
                m.norms[path], sub_new, result, leaf, update, path + " "
            )
        return checks

    note = (
        f"{name}(n_steps={n_steps}, eps={eps}, regex={regex!r}, "
        f"warm_steps={warm_steps}, training={training})"
    )
    names = ("SNParamsTree", "SpectralNorm") if tree else ("SpectralNorm",)
    # a rank < 2 value is not normalized: nothing to store, a plain call
    stores = update and (tree or len(shape) >= 2)
    return Case(
        names,
        make,
        (x,),
        expect,
        train_stateful=update,
        vmap=not update,
        note=note,
        kwargs=kwargs,
        plain_raises=stores,
        reference=reference,
    )


# --------------------------------------------------------------------------
# Recurrent wrappers (DeepRNN, ResetCore, IdentityCore) and the unrolls


def is_core(layer) -> bool:
    return hasattr(layer, "initial_state")


def deep_rnn_by_hand(net, state, x):
    """DeepRNN's wiring written out: each core with its own state, plain
    layers in between, Haiku's skip connections (``[x, h]`` into every core
    after the first; the output concatenates every core's output)."""
    h, states, outputs = x, [], []
    for i, layer in enumerate(net.layers):
        if net.skip_connections and i > 0:
            h = jnp.concatenate([x, h], axis=-1)
        if is_core(layer):
            s, h = layer(state[len(states)], h)
            states.append(s)
            outputs.append(h)
        else:
            h = layer(h)
    if net.skip_connections and net.concat_final_output:
        h = jnp.concatenate(outputs, axis=-1)
    return tuple(states), h


def reset_by_hand(core, state, inputs):
    """ResetCore written out: ``where(reset, initial, state)`` per leaf."""
    x, reset = inputs
    leaves, treedef = jax.tree_util.tree_flatten(state)
    resets = jax.tree_util.tree_leaves(reset)
    if len(resets) == 1:
        resets = resets * len(leaves)
    initial = jax.tree_util.tree_leaves(core.core.initial_state(leaves[0].shape[0]))
    state = treedef.unflatten(
        [
            jnp.where(r[:, None], i.astype(s.dtype), s)
            for r, i, s in zip(resets, initial, leaves)
        ]
    )
    return core.core(state, x)


WRAPPERS = ("DeepRNN", "DeepRNN-skip", "ResetCore", "IdentityCore")


def make_wrapper(kind, variant, in_dim, hidden, seed, concat=True):
    k1, k2 = jax.random.split(key(seed))
    if kind == "DeepRNN":
        if variant:
            layers = [pax.LSTM(in_dim, hidden, rng_key=k1), jax.nn.relu]
            layers.append(pax.GRU(hidden, hidden, rng_key=k2))
        else:
            layers = [pax.VanillaRNN(in_dim, hidden, rng_key=k1)]
            layers += [
                pax.Linear(hidden, 3, rng_key=k2),
                pax.LSTM(3, hidden, rng_key=k2),
            ]
        return pax.DeepRNN(layers)
    if kind == "DeepRNN-skip":
        layers = [pax.LSTM(in_dim, hidden, rng_key=k1)]
        layers.append(pax.GRU(in_dim + hidden, 2, rng_key=k2))
        return pax.nn.deep_rnn_with_skip_connections(layers, concat)
    if kind == "ResetCore":
        inner = pax.LSTM if variant else pax.GRU
        return pax.ResetCore(inner(in_dim, hidden, rng_key=k1))
    return pax.IdentityCore()


def wrapper_output_size(kind, hidden, concat):
    if kind == "DeepRNN-skip":
        return hidden + 2 if concat else 2
    return hidden


def resets_like(state, seed, per_leaf, shape):
    """A boolean reset flag of ``shape``, or one per leaf of ``state``."""
    rng = np.random.default_rng(seed)

    def flags():  # random, but never all False (then nothing is reset)
        r = rng.random(shape) < 0.5
        r.flat[0] = True
        return jnp.asarray(r)

    if per_leaf:
        return jax.tree_util.tree_map(lambda _: flags(), state)
    return flags()


@st.composite
def rnn_wrappers(draw):
    kind = draw(st.sampled_from(WRAPPERS))
    variant, concat = draw(st.booleans()), draw(st.booleans())
    in_dim, hidden = 3, draw(st.sampled_from([2, 4]))
    batch = draw(st.sampled_from([1, 2]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    sdt = fdt(dtype)
    make = lambda: make_wrapper(kind, variant, in_dim, hidden, seed, concat)  # noqa: E731
    core = make()
    state = noisy_state(core, batch, sdt, seed) if kind != "IdentityCore" else ()
    x = array(seed + 1, (batch, in_dim), dtype)
    names = tuple(kind.split("-")[:1]) + ("LSTM", "GRU", "VanillaRNN", "Linear")
    state_spec = jax.tree_util.tree_map(lambda s: sds(s.shape, s.dtype), state)
    if kind == "IdentityCore":
        out = sds(x.shape, dtype)  # the input, unchanged
    else:
        out = sds((batch, wrapper_output_size(kind, hidden, concat)), sdt)
    expect = (state_spec, out)
    inputs = x
    if kind == "ResetCore":
        inputs = (x, resets_like(state, seed, draw(st.booleans()), (batch,)))
    bad = draw(maybe_bad(("none", "str", "channels", "state")))
    if bad and kind == "IdentityCore":
        bad = None  # anything goes through unchanged
    if bad == "state":
        if kind == "ResetCore":  # a flag that fits no state leaf
            inputs = (x, jnp.zeros((batch + 1,), bool))
        else:  # one entry per core, not fewer
            state = state[:-1]
    elif bad:
        x = bad_input(bad, x, (), (batch, in_dim + 1))
        inputs = (x, inputs[1]) if kind == "ResetCore" else x
        if kind == "ResetCore" and bad == "none":
            inputs = x  # not a pair at all
    if bad:
        expect = ERROR

    def reference(m, new, out):
        if kind == "IdentityCore":
            return [("the input", inputs, out[1])]
        if kind == "ResetCore":
            return [("reset by hand", reset_by_hand(m, state, inputs), out)]
        expected = deep_rnn_by_hand(m, state, inputs)
        checks = [("layers by hand", expected, out)]
        if jnp.issubdtype(dtype, jnp.integer):
            float_x = inputs.astype(jnp.float32)
            checks.append(("float32 computation", m(state, float_x), out))
        return checks

    return Case(
        names,
        make,
        (state, inputs),
        expect,
        note=f"{kind}(variant={variant}, concat={concat}, hidden={hidden})",
        reference=reference,
    )


class Unroll(pax.Module):
    """``dynamic_unroll`` or ``static_unroll`` of a core, as a module (so that
    the harness can call, jit and vmap it like any layer)."""

    def __init__(self, core, dynamic, time_major, reverse, all_states):
        super().__init__()
        self.core = core
        self.dynamic = dynamic
        self.time_major = time_major
        self.reverse = reverse
        self.all_states = all_states

    def unroll(self, dynamic, state, xs):
        f = pax.nn.dynamic_unroll if dynamic else pax.nn.static_unroll
        return f(self.core, xs, state, self.time_major, self.reverse, self.all_states)

    def __call__(self, state, xs):
        return self.unroll(self.dynamic, state, xs)


def unroll_by_hand(m, state, xs):
    """A Python loop over time: ``(final state or all states, outputs)``."""
    axis = 0 if m.time_major else 1
    steps = jax.tree_util.tree_leaves(xs)[0].shape[axis]
    order = range(steps - 1, -1, -1) if m.reverse else range(steps)
    states, outputs = [None] * steps, [None] * steps
    for t in order:
        x_t = jax.tree_util.tree_map(lambda a, t=t: jnp.take(a, t, axis=axis), xs)
        state, outputs[t] = m.core(state, x_t)
        states[t] = state

    def stack(seq):
        return jax.tree_util.tree_map(lambda *a: jnp.stack(a, axis=axis), *seq)

    return (stack(states) if m.all_states else state), stack(outputs)


@st.composite
def unroll(draw):
    kind = draw(st.sampled_from(["LSTM", "GRU", "VanillaRNN", *WRAPPERS]))
    dynamic, time_major = draw(st.booleans()), draw(st.booleans())
    reverse, all_states = draw(st.booleans()), draw(st.booleans())
    steps, batch = draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2]))
    in_dim, hidden = 3, 2
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    sdt = fdt(dtype)

    def make_core():
        if kind in WRAPPERS:
            return make_wrapper(kind, True, in_dim, hidden, seed)
        return getattr(pax, kind)(in_dim, hidden, rng_key=key(seed))

    def make():
        return Unroll(make_core(), dynamic, time_major, reverse, all_states)

    core = make_core()
    state = noisy_state(core, batch, sdt, seed) if kind != "IdentityCore" else ()
    seq = (steps, batch) if time_major else (batch, steps)
    x = array(seed + 1, (*seq, in_dim), dtype)
    xs = (x, resets_like(state, seed, False, seq)) if kind == "ResetCore" else x
    axis = 0 if time_major else 1

    def stacked(s):
        shape = s.shape[:axis] + (steps,) + s.shape[axis:] if all_states else s.shape
        return sds(shape, s.dtype)

    if kind == "IdentityCore":
        out = sds(x.shape, dtype)
    else:
        out = sds((*seq, wrapper_output_size(kind, hidden, True)), sdt)
    expect = (jax.tree_util.tree_map(stacked, state), out)
    bad = draw(maybe_bad(("none", "str", "rank", "channels")))
    if kind == "IdentityCore" and (bad == "channels" or bad == "rank" and time_major):
        bad = None  # IdentityCore takes any input with a time axis
    if bad:
        x = bad_input(bad, x, (steps,), (*seq, in_dim + 1))
        xs = (x, xs[1]) if kind == "ResetCore" else x
        expect = ERROR
    names = ("dynamic_unroll", "static_unroll", kind.split("-")[0], "LSTM", "GRU")

    def reference(m, new, out):
        checks = [("a Python loop over time", unroll_by_hand(m, state, xs), out)]
        other = "static_unroll" if dynamic else "dynamic_unroll"
        checks.append((other, m.unroll(not dynamic, state, xs), out))
        return checks

    note = (
        f"{'dynamic' if dynamic else 'static'}_unroll({kind}, T={steps}, "
        f"time_major={time_major}, reverse={reverse}, all_states={all_states})"
    )
    return Case(names, make, (state, xs), expect, note=note, reference=reference)


# --------------------------------------------------------------------------
# RngSeq (drawing keys is a state update)


class Draw(pax.Module):
    """Draws ``num`` keys from an ``RngSeq`` twice; returns their raw data."""

    def __init__(self, seq, num):
        super().__init__()
        self.seq = seq
        self.num = num

    def __call__(self):
        first = self.seq.next_rng_key(self.num)
        second = self.seq.next_rng_key(self.num)
        data = [jax.random.key_data(k) if _typed(k) else k for k in (first, second)]
        return tuple(data)


def _typed(k) -> bool:
    return jnp.issubdtype(k.dtype, jax.dtypes.prng_key)


@st.composite
def rng_seq(draw):
    num = draw(st.sampled_from([1, 3]))
    typed = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))

    def make():
        k = jax.random.key(seed) if typed else key(seed)
        return Draw(pax.RngSeq(rng_key=k), num)

    one = (num, 2) if num > 1 else (2,)
    expect = (sds(one, jnp.uint32), sds(one, jnp.uint32))

    def reference(m, new, out):
        rows = [np.asarray(a).reshape(-1, 2) for a in out]
        state = new.seq._rng_key
        state = jax.random.key_data(state) if _typed(state) else state
        rows.append(np.asarray(state).reshape(-1, 2))
        distinct = len({tuple(r) for r in np.concatenate(rows)})
        return [("distinct keys", np.int64(2 * num + 1), np.int64(distinct))]

    return Case(
        ("RngSeq", "Draw"),
        make,
        (),
        expect,
        train_stateful=True,
        vmap=False,
        note=f"RngSeq(typed={typed}), {num} keys twice",
        reference=reference,
    )


# --------------------------------------------------------------------------
# Nets (small sizes: each example compiles a whole network)


@st.composite
def vector_quantizer(draw):
    ema, training = draw(st.booleans()), draw(st.booleans())
    dim, num = draw(st.sampled_from([2, 4])), draw(st.sampled_from([1, 5]))
    shape = draw(st.sampled_from([(3, dim), (2, 3, dim)]))
    dtype = draw(input_dtype(floats_only=True))
    seed = draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype)
    # Haiku's rule: outputs follow the promotion of input and codebook dtypes
    out = jnp.promote_types(dtype, jnp.float32)
    n = math.prod(shape[:-1])
    expect = {
        "quantize": sds(shape, out),
        "loss": sds((), out),
        "perplexity": sds((), out),
        "encodings": sds((n, num), out),
        "encoding_indices": sds(shape[:-1], jnp.int32),
        "distances": sds((n, num), out),
    }
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (), (*shape[:-1], dim + 1))
        expect = ERROR

    def make():
        if ema:
            vq = pax.nets.VectorQuantizerEMA(
                dim, num, 0.25, decay=0.9, rng_key=key(seed)
            )
        else:
            vq = pax.nets.VectorQuantizer(dim, num, 0.25, rng_key=key(seed))
        return vq if training else vq.eval()

    names = ("VectorQuantizerEMA",) if ema else ("VectorQuantizer",)
    stateful = ema and training
    return Case(
        names,
        make,
        (x,),
        expect,
        train_stateful=stateful,
        vmap=False,  # the loss and perplexity average over the whole batch
        note=f"{names[0]}({dim}, {num}, training={training})",
    )


@st.composite
def mlp(draw):
    in_dim = draw(st.sampled_from([2, 3]))
    sizes = draw(st.sampled_from([[4, 2], [3], [4, 4, 1]]))
    activate_final = draw(st.booleans())
    with_bias = draw(st.booleans())
    shape = draw(st.sampled_from([(2, in_dim), (1, 2, in_dim), (in_dim,)]))
    dtype, seed = draw(input_dtype()), draw(st.integers(0, 2**16))
    x = array(seed, shape, dtype)
    expect = sds((*shape[:-1], sizes[-1]), fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (), (*shape[:-1], in_dim + 1))
        expect = ERROR

    def make():
        return pax.nets.MLP(
            in_dim,
            sizes,
            with_bias=with_bias,
            activate_final=activate_final,
            rng_key=key(seed),
        )

    return Case(("MLP",), make, (x,), expect, note=f"MLP({in_dim}, {sizes})")


@st.composite
def resnet(draw):
    v2, bottleneck = draw(st.booleans()), draw(st.booleans())
    training = draw(st.booleans())
    batch = draw(st.sampled_from([1, 2]))
    size = draw(st.sampled_from([8, 9]))
    classes = 3
    dtype = draw(input_dtype(floats_only=KNOWN_NORM_INT_INPUT))
    seed = draw(st.integers(0, 2**16))
    x = array(seed, (batch, size, size, 3), dtype)
    expect = sds((batch, classes), fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (batch, size, 3), (batch, size, size, 4))
        expect = ERROR

    def make():
        net = pax.nets.ResNet(
            3,
            blocks_per_group=(1, 1, 1, 1),
            num_classes=classes,
            resnet_v2=v2,
            bottleneck=bottleneck,
            channels_per_group=(8, 8, 8, 8),
            use_projection=(True, True, False, False),
            initial_conv_config={"out_features": 8, "kernel_shape": 3},
            strides=(1, 2, 1, 1),
            rng_key=key(seed),
        )
        return net if training else net.eval()

    return Case(
        ("ResNet",),
        make,
        (x,),
        expect,
        train_stateful=training,
        vmap=not training,
        note=f"ResNet(v2={v2}, bottleneck={bottleneck}, training={training})",
    )


@st.composite
def mobilenet(draw):
    use_bn, training = draw(st.booleans()), draw(st.booleans())
    batch = draw(st.sampled_from([1, 2]))
    dtype = draw(input_dtype(floats_only=KNOWN_NORM_INT_INPUT and use_bn))
    seed = draw(st.integers(0, 2**16))
    x = array(seed, (batch, 9, 9, 3), dtype)
    expect = sds((batch, 4), fdt(dtype))
    bad = draw(maybe_bad())
    if bad:
        x = bad_input(bad, x, (batch, 9, 3), (batch, 9, 9, 2))
        expect = ERROR

    def make():
        net = pax.nets.MobileNetV1(
            3,
            strides=(1, 2),
            channels=(8, 8),
            num_classes=4,
            use_bn=use_bn,
            rng_key=key(seed),
        )
        return net if training else net.eval()

    stateful = training and use_bn
    return Case(
        ("MobileNetV1",),
        make,
        (x,),
        expect,
        train_stateful=stateful,
        vmap=not stateful,
        note=f"MobileNetV1(use_bn={use_bn}, training={training})",
    )


@st.composite
def transformer(draw):
    lm = draw(st.booleans())
    layers, heads = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2]))
    d, t, batch = 4, draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2]))
    dropout_rate = draw(st.sampled_from([0.0, 0.2]))
    training = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    stateful = training and dropout_rate > 0
    if lm:
        vocab = 7
        positional = draw(st.sampled_from(["learned", "rotary"]))
        x = array(seed, (batch, t), jnp.int32, high=vocab)
        expect = sds((batch, t, vocab), jnp.float32)
        bad = draw(maybe_bad(("none", "str", "rank")))
        if bad:
            x = bad_input(bad, x, (t,), ())
            expect = ERROR

        def make():
            net = pax.nets.TransformerLM(
                vocab,
                d,
                heads,
                layers,
                max_length=3,
                dropout_rate=dropout_rate,
                positional=positional,
                rng_key=key(seed),
            )
            return net if training else net.eval()

        names = ("TransformerLM",)
    else:
        dtype = draw(input_dtype(floats_only=True))
        x = array(seed, (batch, t, d), dtype)
        expect = sds((batch, t, d), dtype)
        bad = draw(maybe_bad())
        if bad:
            x = bad_input(bad, x, (t, d), (batch, t, d + 1))
            expect = ERROR

        def make():
            net = pax.nets.Transformer(
                d, heads, layers, dropout_rate=dropout_rate, rng_key=key(seed)
            )
            return net if training else net.eval()

        names = ("Transformer",)
    return Case(
        names,
        make,
        (x,),
        expect,
        train_stateful=stateful,
        vmap=not stateful,
        note=f"{names[0]}(layers={layers}, heads={heads}, dropout={dropout_rate}, "
        f"training={training})",
    )


# --------------------------------------------------------------------------
# The table: family -> (strategy, weight). The weight scales the number of
# examples (cheap layers many, whole networks few).

FAMILIES: dict[str, tuple[Any, int]] = {
    "linear": (linear(), 6),
    "bias": (bias(), 4),
    "conv": (conv(), 8),
    "conv_transpose": (conv_transpose(), 6),
    "depthwise": (depthwise(), 5),
    "separable": (separable(), 3),
    "pool": (pool(), 6),
    "reshape": (reshape(), 5),
    "embed": (embed(), 4),
    "dropout": (dropout(), 4),
    "containers": (containers(), 3),
    "batch_apply": (batch_apply(), 3),
    "layer_stack": (layer_stack(), 3),
    "norm": (norm(), 5),
    "attention": (attention(), 3),
    "recurrent": (recurrent(), 3),
    "conv_lstm": (conv_lstm(), 2),
    "mlp": (mlp(), 3),
    "resnet": (resnet(), 1),
    "mobilenet": (mobilenet(), 1),
    "transformer": (transformer(), 2),
    "vector_quantizer": (vector_quantizer(), 2),
    "ema": (ema(), 4),
    "spectral_norm": (spectral_norm(), 4),
    "rnn_wrappers": (rnn_wrappers(), 3),
    "unroll": (unroll(), 4),
    "rng_seq": (rng_seq(), 1),
}
