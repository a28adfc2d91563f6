"""LayerNorm, InstanceNorm, RMSNorm, GroupNorm: numerics, Haiku parity, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

RANDOM = pax.initializers.RandomNormal(1.0, 1.0)


def np_norm(x, axes, eps=1e-5):
    x = np.asarray(x, np.float64)
    mean = x.mean(axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def along(p, ndim, axis):
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(p, np.float64).reshape(shape)


@pytest.mark.parametrize(
    "axis, axes", [(-1, (2,)), ((1, 2), (1, 2)), (slice(1, None), (1, 2))]
)
def test_layer_norm_numerics(axis, axes, key):
    ln = pax.LayerNorm(4, axis, scale_init=RANDOM, offset_init=RANDOM, rng_key=key)
    x = jax.random.normal(key, (2, 3, 4)) * 3 + 1
    expected = np_norm(x, axes) * along(ln.scale, 3, -1) + along(ln.offset, 3, -1)
    np.testing.assert_allclose(ln(x), expected, rtol=1e-4, atol=1e-5)
    fast = pax.LayerNorm(4, axis, use_fast_variance=True)
    np.testing.assert_allclose(fast(x), np_norm(x, axes), rtol=1e-3, atol=1e-4)


def test_layer_norm_param_axis_and_call_time_affine(key):
    ln = pax.LayerNorm(3, axis=(2, 3), param_axis=1, scale_init=RANDOM, rng_key=key)
    x = jax.random.normal(key, (2, 3, 4, 5))
    expected = np_norm(x, (2, 3)) * along(ln.scale, 4, 1) + 0
    np.testing.assert_allclose(ln(x), expected, rtol=1e-4, atol=1e-5)
    bare = pax.LayerNorm(5, create_scale=False, create_offset=False)
    y = bare(x, scale=jnp.full((5,), 2.0), offset=jnp.ones((5,)))
    np.testing.assert_allclose(y, np_norm(x, (3,)) * 2 + 1, rtol=1e-4, atol=1e-5)
    assert bare.parameters().scale is None


@pytest.mark.parametrize("axis", [-1, slice(1, None)])
def test_layer_norm_parity_with_haiku(axis, key):
    x = jax.random.normal(key, (2, 3, 4)) * 2
    f = hk.transform(lambda x: hk.LayerNorm(axis, True, True, param_axis=-1)(x))
    params = f.init(key, x)
    ln = pax.LayerNorm(4, axis).replace(
        scale=params["layer_norm"]["scale"] + 0.5,
        offset=params["layer_norm"]["offset"] - 0.25,
    )
    params = jax.tree_util.tree_map(lambda p: p, params)
    params["layer_norm"]["scale"] = ln.scale
    params["layer_norm"]["offset"] = ln.offset
    np.testing.assert_allclose(ln(x), f.apply(params, None, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_instance_norm(data_format, key):
    norm = pax.InstanceNorm(3, scale_init=RANDOM, data_format=data_format, rng_key=key)
    if data_format == "channels_last":
        x, axes, ch = jax.random.normal(key, (2, 4, 5, 3)), (1, 2), 3
    else:
        x, axes, ch = jax.random.normal(key, (2, 3, 4, 5)), (2, 3), 1
    expected = np_norm(x, axes) * along(norm.scale, 4, ch)
    np.testing.assert_allclose(norm(x), expected, rtol=1e-4, atol=1e-5)
    f = hk.transform(lambda x: hk.InstanceNorm(True, True, data_format=data_format)(x))
    params = f.init(key, x)
    params["instance_norm"]["scale"] = norm.scale.reshape(
        params["instance_norm"]["scale"].shape
    )
    np.testing.assert_allclose(norm(x), f.apply(params, None, x), rtol=1e-5, atol=1e-5)


def test_rms_norm(key):
    norm = pax.RMSNorm(4, scale_init=RANDOM, rng_key=key)
    x = jax.random.normal(key, (3, 4))
    xn = np.asarray(x, np.float64)
    expected = (
        xn / np.sqrt((xn**2).mean(-1, keepdims=True) + 1e-5) * along(norm.scale, 2, -1)
    )
    np.testing.assert_allclose(norm(x), expected, rtol=1e-5)
    f = hk.transform(lambda x: hk.RMSNorm(-1)(x))
    params = f.init(key, x)
    params["rms_norm"]["scale"] = norm.scale
    np.testing.assert_allclose(norm(x), f.apply(params, None, x), rtol=1e-5, atol=1e-6)
    assert pax.RMSNorm(4, create_scale=False).parameters().scale is None


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_group_norm(data_format, key):
    gn = pax.GroupNorm(
        2,
        6,
        scale_init=RANDOM,
        offset_init=RANDOM,
        data_format=data_format,
        rng_key=key,
    )
    x = jax.random.normal(key, (2, 5, 5, 6)) * 2 + 3
    xn = np.asarray(x, np.float64)
    # by hand: split the 6 channels into 2 groups of 3 and normalize each group
    # of each example over (H, W, channels-in-group)
    groups = xn.reshape(2, 5, 5, 2, 3)
    normed = np_norm(groups, (1, 2, 4)).reshape(2, 5, 5, 6)
    expected = normed * along(gn.scale, 4, 3) + along(gn.offset, 4, 3)
    if data_format == "channels_first":
        y = jnp.transpose(gn(jnp.transpose(x, (0, 3, 1, 2))), (0, 2, 3, 1))
    else:
        y = gn(x)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_group_norm_parity_with_haiku(key):
    x = jax.random.normal(key, (2, 4, 8))
    f = hk.transform(lambda x: hk.GroupNorm(4)(x))
    params = f.init(key, x)
    gn = pax.GroupNorm(4, 8, scale_init=RANDOM, rng_key=key)
    params["group_norm"]["scale"] = gn.scale
    np.testing.assert_allclose(gn(x), f.apply(params, None, x), rtol=1e-5, atol=1e-5)


def test_errors(key):
    with pytest.raises(
        ValueError, match=r"`groups` \(=3\) must divide `num_channels` \(=8\)"
    ):
        pax.GroupNorm(3, 8)
    with pytest.raises(ValueError, match="expected input with 8 channels"):
        pax.GroupNorm(2, 8)(jnp.ones((2, 4, 6)))
    with pytest.raises(ValueError, match="must include the channel axis"):
        pax.GroupNorm(2, 8, axis=(1,))(jnp.ones((2, 4, 8)))
    with pytest.raises(ValueError, match="cannot pass `scale` at call time"):
        pax.LayerNorm(4)(jnp.ones((2, 4)), scale=jnp.ones(4))
    with pytest.raises(ValueError, match="cannot pass `offset` at call time"):
        pax.GroupNorm(2, 4)(jnp.ones((2, 4)), offset=jnp.ones(4))
    with pytest.raises(ValueError, match="unknown `data_format`"):
        pax.GroupNorm(2, 4, data_format="NHCW")
    with pytest.raises(ValueError, match="unknown `data_format`"):
        pax.InstanceNorm(4, data_format="bad")
    with pytest.raises(ValueError, match="expected input with 4 channels on axis -1"):
        pax.LayerNorm(4)(jnp.ones((2, 5)))
    with pytest.raises(TypeError, match="`axis` must be an int"):
        pax.LayerNorm(4, axis="last")
    with pytest.raises(ValueError, match="out of range"):
        pax.LayerNorm(4, axis=3)(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="expected input with 4 channels"):
        pax.RMSNorm(4)(jnp.ones((2, 3)))


# -- constructor argument errors: the class, the argument, what was expected --

BAD_ARGUMENTS = [
    # (constructor, kwargs, error type, message)
    (
        pax.BatchNorm2D,
        dict(num_channels=3, eps="1e-5"),
        TypeError,
        "BatchNorm2D: `eps` must be a positive float, got '1e-5' (str)",
    ),
    (
        pax.BatchNorm1D,
        dict(num_channels=3, eps=True),
        TypeError,
        "BatchNorm1D: `eps` must be a positive float, got True (bool)",
    ),
    (
        pax.BatchNorm,
        dict(num_channels=3, eps=0.0),
        ValueError,
        "BatchNorm: `eps` must be a positive float, got 0.0",
    ),
    (
        pax.BatchNorm,
        dict(num_channels=3, eps=float("nan")),
        ValueError,
        "BatchNorm: `eps` must be a positive float, got nan",
    ),
    (
        pax.BatchNorm2D,
        dict(num_channels=3, decay_rate="0.9"),
        TypeError,
        "BatchNorm2D: `decay_rate` must be a float in [0, 1], got '0.9' (str)",
    ),
    (
        pax.BatchNorm2D,
        dict(num_channels=3, decay_rate=False),
        TypeError,
        "BatchNorm2D: `decay_rate` must be a float in [0, 1], got False (bool)",
    ),
    (
        pax.BatchNorm,
        dict(num_channels=3, decay_rate=-0.1),
        ValueError,
        "BatchNorm: `decay_rate` must be a float in [0, 1], got -0.1",
    ),
    (
        pax.BatchNorm,
        dict(num_channels="3"),
        TypeError,
        "BatchNorm: `num_channels` must be a positive int, got '3' (str)",
    ),
    (
        pax.BatchNorm,
        dict(num_channels=True),
        TypeError,
        "BatchNorm: `num_channels` must be a positive int, got True (bool)",
    ),
    (
        pax.BatchNorm,
        dict(num_channels=3, data_format=-1),
        TypeError,
        "BatchNorm: `data_format` must be a string",
    ),
    (
        pax.BatchNorm,
        dict(num_channels=3, cross_replica_axis=["i", ["j"]]),
        TypeError,
        "BatchNorm: `cross_replica_axis` must be None, an axis name or a sequence",
    ),
    (
        pax.BatchNorm,
        dict(num_channels=3, cross_replica_axis=True),
        TypeError,
        "BatchNorm: `cross_replica_axis` must be None, an axis name or a sequence",
    ),
    (
        pax.LayerNorm,
        dict(num_channels=3, eps="small"),
        TypeError,
        "LayerNorm: `eps` must be a positive float, got 'small' (str)",
    ),
    (
        pax.LayerNorm,
        dict(num_channels=3, eps=-1e-5),
        ValueError,
        "LayerNorm: `eps` must be a positive float, got -1e-05",
    ),
    (
        pax.LayerNorm,
        dict(num_channels=3, axis=True),
        TypeError,
        "LayerNorm: `axis` must be an int, a sequence of ints or a slice, got "
        "True (bool)",
    ),
    (
        pax.LayerNorm,
        dict(num_channels=3, axis=(1, False)),
        TypeError,
        "LayerNorm: `axis` must be an int, a sequence of ints or a slice",
    ),
    (
        pax.LayerNorm,
        dict(num_channels=3, param_axis=True),
        TypeError,
        "LayerNorm: `param_axis` must be an int or a sequence of ints, got True (bool)",
    ),
    (
        pax.InstanceNorm,
        dict(num_channels=3, eps=None),
        TypeError,
        "InstanceNorm: `eps` must be a positive float, got None (NoneType)",
    ),
    (
        pax.InstanceNorm,
        dict(num_channels=3, data_format=None),
        TypeError,
        "InstanceNorm: `data_format` must be a string",
    ),
    (
        pax.RMSNorm,
        dict(num_channels=3, eps="1e-6"),
        TypeError,
        "RMSNorm: `eps` must be a float >= 0, got '1e-6' (str)",
    ),
    (
        pax.RMSNorm,
        dict(num_channels=3, eps=float("inf")),
        ValueError,
        "RMSNorm: `eps` must be a float >= 0, got inf",
    ),
    (
        pax.RMSNorm,
        dict(num_channels=3, param_axis="last"),
        TypeError,
        "RMSNorm: `param_axis` must be an int or a sequence of ints, got 'last' (str)",
    ),
    (
        pax.RMSNorm,
        dict(num_channels=3, axis=[0.5]),
        TypeError,
        "RMSNorm: `axis` must be an int, a sequence of ints or a slice",
    ),
    (
        pax.GroupNorm,
        dict(groups=True, num_channels=4),
        TypeError,
        "GroupNorm: `groups` must be a positive int, got True (bool)",
    ),
    (
        pax.GroupNorm,
        dict(groups="2", num_channels=4),
        TypeError,
        "GroupNorm: `groups` must be a positive int, got '2' (str)",
    ),
    (
        pax.GroupNorm,
        dict(groups=0, num_channels=4),
        ValueError,
        "GroupNorm: `groups` must be a positive int, got 0",
    ),
    (
        pax.GroupNorm,
        dict(groups=2, num_channels=4, eps=[1e-5]),
        TypeError,
        "GroupNorm: `eps` must be a positive float, got [1e-05] (list)",
    ),
    (
        pax.GroupNorm,
        dict(groups=2, num_channels=4, axis="all"),
        TypeError,
        "GroupNorm: `axis` must be an int, a sequence of ints or a slice",
    ),
]


@pytest.mark.parametrize(
    "cls, kwargs, error, message",
    BAD_ARGUMENTS,
    ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _, _ in BAD_ARGUMENTS],
)
def test_constructor_argument_errors(cls, kwargs, error, message):
    with pytest.raises(error) as info:
        cls(**kwargs)
    assert type(info.value) is error
    assert str(info.value).startswith(message), str(info.value)


def test_numeric_arguments_accept_numpy_and_int_values():
    bn = pax.BatchNorm(3, decay_rate=np.float32(0.5), eps=1)
    assert (bn.decay_rate, bn.eps) == (0.5, 1.0)
    assert type(bn.eps) is float
    gn = pax.GroupNorm(np.int64(2), 4, axis=[np.int32(1), -1], eps=jnp.asarray(1e-3))
    assert gn.groups == 2 and gn.axis == (1, -1)
    assert gn.eps == pytest.approx(1e-3)


def test_layer_norm_several_param_axes_against_formula():
    """A tuple ``param_axis``: ``scale``/``offset`` have one size per axis and
    act along those axes (checked with the module's own random values)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5))
    rand = pax.initializers.RandomNormal()
    ln = pax.LayerNorm(
        (3, 5), axis=(1, 2), scale_init=rand, offset_init=rand, param_axis=(0, -1)
    )
    assert ln.scale.shape == ln.offset.shape == (3, 5)
    mean = x.mean((1, 2), keepdims=True)
    var = x.var((1, 2), keepdims=True)
    scale, offset = ln.scale[:, None, :], ln.offset[:, None, :]
    want = scale * (x - mean) / jnp.sqrt(var + 1e-5) + offset
    np.testing.assert_allclose(ln(x), want, rtol=1e-5, atol=1e-5)

    rms = pax.RMSNorm((4, 5), axis=-1, eps=0.0, scale_init=rand, param_axis=(1, 2))
    want = x * rms.scale[None] / jnp.sqrt(jnp.mean(x**2, -1, keepdims=True))
    np.testing.assert_allclose(rms(x), want, rtol=1e-5, atol=1e-5)


def test_several_param_axes_errors():
    with pytest.raises(ValueError, match="one size per axis"):
        pax.LayerNorm(3, param_axis=(0, 1))
    with pytest.raises(ValueError, match="increasing order"):
        pax.LayerNorm((5, 3), param_axis=(-1, 0))(jnp.ones((3, 4, 5)))
    with pytest.raises(ValueError, match=r"expected input with \(3, 4\) channels"):
        pax.RMSNorm((3, 4), param_axis=(0, 2))(jnp.ones((3, 4, 5)))
    with pytest.raises(ValueError, match="`eps` must be a float >= 0, got -1.0"):
        pax.RMSNorm(3, eps=-1.0)
