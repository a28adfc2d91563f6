"""Mixed precision with jmp: apply_mp_policy / unwrap_mp_policy."""

import jax
import jax.numpy as jnp
import jmp
import numpy as np
import optax
import pytest

import pax

HALF = jmp.get_policy("params=float32,compute=bfloat16,output=float32")


def make(key):
    k1, k2 = jax.random.split(key)
    return pax.Sequential(
        pax.Linear(3, 4, rng_key=k1),
        pax.BatchNorm(4),
        jax.nn.relu,
        pax.LayerNorm(4),
        pax.Linear(4, 2, rng_key=k2),
    )


def test_compute_in_bfloat16_output_float32_params_float32(key):
    net = make(key)
    mp = pax.apply_mp_policy(net, HALF)
    assert type(mp).__name__ == "Sequential" and isinstance(mp, pax.Sequential)
    assert mp[0].weight.dtype == jnp.float32  # stored in param dtype
    x = jax.random.normal(key, (5, 3))
    mp_bn, y = pax.purecall(mp, x)
    assert y.dtype == jnp.float32
    # the same network computed by hand: matmuls in bfloat16, norms in float32
    bf = jnp.bfloat16
    fc1, fc2 = net[0], net[4]
    h = x.astype(bf) @ fc1.weight.astype(bf) + fc1.bias.astype(bf)[None, :]
    hf = np.asarray(h.astype(jnp.float32))
    mean, var = hf.mean(0), hf.var(0)
    h = jnp.asarray((hf - mean) / np.sqrt(var + 1e-5)).astype(bf)
    h = np.asarray(jax.nn.relu(h).astype(jnp.float32))
    m, v = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    h = jnp.asarray((h - m) / np.sqrt(v + 1e-5)).astype(bf)
    out = h @ fc2.weight.astype(bf) + fc2.bias.astype(bf)[None, :]
    np.testing.assert_allclose(y, out.astype(jnp.float32), rtol=2e-2, atol=2e-2)
    # BatchNorm statistics stay float32 and were updated
    assert mp_bn[1].mean_ema.averages.dtype == jnp.float32
    np.testing.assert_allclose(mp_bn[1].mean_ema.averages, mean, rtol=2e-2, atol=2e-2)


def test_norm_layers_keep_float32_parameters_and_math(key):
    policy = jmp.get_policy("params=bfloat16,compute=bfloat16,output=bfloat16")
    mp = pax.apply_mp_policy(make(key), policy)
    assert mp[0].weight.dtype == jnp.bfloat16
    assert mp[1].scale.dtype == jnp.float32 and mp[3].scale.dtype == jnp.float32
    assert mp[1].var_ema.averages.dtype == jnp.float32
    _, y = pax.purecall(mp, jnp.ones((2, 3)))
    assert y.dtype == jnp.bfloat16


def test_unwrap_restores_types_and_values(key):
    net = make(key)
    policy = jmp.get_policy("params=bfloat16,compute=bfloat16,output=float32")
    back = pax.unwrap_mp_policy(pax.apply_mp_policy(net, policy))
    assert type(back) is pax.Sequential and type(back[0]) is pax.Linear
    assert type(back[1]) is pax.BatchNorm
    assert back[0].weight.dtype == jnp.float32
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(net)
    # bfloat16 storage rounded the weights; float32 policies keep them exactly
    np.testing.assert_allclose(back[0].weight, net[0].weight, rtol=1e-2)
    exact = pax.unwrap_mp_policy(pax.apply_mp_policy(net, HALF))
    for a, b in zip(jax.tree_util.tree_leaves(exact), jax.tree_util.tree_leaves(net)):
        np.testing.assert_array_equal(a, b)


def test_training_with_dynamic_loss_scaling(key):
    policy = jmp.get_policy("params=float32,compute=float16,output=float32")
    model = pax.apply_mp_policy(make(key), policy)
    opt = pax.optim.from_optax(optax.adam(1e-2), model.parameters())
    x = jax.random.normal(key, (16, 3))
    y = jnp.concatenate([x.sum(-1, keepdims=True), x[:, :1]], axis=-1)

    def loss_fn(model, x, y, scale):
        model, out = pax.purecall(model, x)
        loss = jnp.mean((out - y) ** 2)
        return scale.scale(loss), (loss, model)

    @jax.jit
    def step(model, opt, scale, x, y):
        grads, (loss, model_new) = pax.grad(loss_fn, has_aux=True)(model, x, y, scale)
        grads = scale.unscale(grads)
        finite = jmp.all_finite(grads)
        scale = scale.adjust(finite)
        opt_new, updates = pax.purecall(opt, grads, model.parameters())
        model_new = pax.apply_updates(model_new, updates)
        model, opt = jmp.select_tree(finite, (model_new, opt_new), (model, opt))
        return model, opt, scale, loss, finite

    # start with an absurd scale: the first steps overflow in float16 and are skipped
    scale = jmp.DynamicLossScale(jnp.float32(2.0**40), period=5)
    finites, losses = [], []
    for _ in range(40):
        model, opt, scale, loss, finite = step(model, opt, scale, x, y)
        finites.append(bool(finite))
        losses.append(float(loss))
    assert not finites[0]  # overflow detected, update skipped
    assert float(scale.loss_scale) < 2.0**40  # and the scale came down
    assert any(finites)
    assert losses[-1] < losses[0]


def test_errors(key):
    with pytest.raises(TypeError, match="expects a jmp.Policy"):
        pax.apply_mp_policy(make(key), "bf16")
    with pytest.raises(TypeError, match="expects a pax.Module"):
        pax.apply_mp_policy(jnp.ones(3), HALF)
    with pytest.raises(pax.MutationError):
        pax.apply_mp_policy(make(key), HALF)(jnp.ones((2, 3)))  # BN trains: pure


# ---------------------------------------------------------------------------
# a norm given to apply_mp_policy returns the policy's output dtype
# ---------------------------------------------------------------------------


def _standardize(x, axes, eps=1e-5):
    x = np.asarray(x, np.float64)
    mean = x.mean(axes, keepdims=True)
    var = x.var(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _group_norm(x, groups=2):
    x = np.asarray(x, np.float64)
    g = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
    axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)
    return _standardize(g, axes).reshape(x.shape)


def _rms_norm(x, eps=1e-5):
    x = np.asarray(x, np.float64)
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps)


# (name, module, input shape, hand formula with the default scale 1, offset 0)
NORMS = [
    ("BatchNorm", lambda: pax.BatchNorm(4), (6, 4), lambda x: _standardize(x, (0,))),
    (
        "BatchNorm1D",
        lambda: pax.BatchNorm1D(4),
        (2, 3, 4),
        lambda x: _standardize(x, (0, 1)),
    ),
    (
        "BatchNorm2D",
        lambda: pax.BatchNorm2D(4),
        (2, 3, 3, 4),
        lambda x: _standardize(x, (0, 1, 2)),
    ),
    ("LayerNorm", lambda: pax.LayerNorm(4), (3, 4), lambda x: _standardize(x, (-1,))),
    (
        "InstanceNorm",
        lambda: pax.InstanceNorm(4),
        (2, 3, 3, 4),
        lambda x: _standardize(x, (1, 2)),
    ),
    ("GroupNorm", lambda: pax.GroupNorm(2, 4), (2, 3, 4), _group_norm),
    ("RMSNorm", lambda: pax.RMSNorm(4), (3, 4), _rms_norm),
]

OUTER_POLICIES = [
    "params=float32,compute=float32,output=bfloat16",
    "params=float32,compute=bfloat16,output=float32",
    "params=bfloat16,compute=bfloat16,output=float16",
]


@pytest.mark.parametrize("policy", OUTER_POLICIES)
@pytest.mark.parametrize("name, make, shape, hand", NORMS, ids=[n[0] for n in NORMS])
def test_a_norm_given_to_the_policy_returns_its_output_dtype(
    name, make, shape, hand, policy, key
):
    policy = jmp.get_policy(policy)
    norm = pax.apply_mp_policy(make(), policy)
    x = jax.random.normal(key, shape) * 2 + 1
    xr = np.asarray(x.astype(policy.compute_dtype).astype(jnp.float32))
    if name.startswith("BatchNorm"):
        _, y = pax.purecall(norm, x)  # training: batch statistics
        assert y.dtype == policy.output_dtype, name
        np.testing.assert_allclose(
            np.asarray(y.astype(jnp.float32)), hand(xr), rtol=2e-2, atol=2e-2
        )
        y = norm.eval()(x)  # eval: the initial running averages, mean 0 var 1
        expected = xr / np.sqrt(1 + 1e-5)
    else:
        y = norm(x)
        expected = hand(xr)
    assert y.dtype == policy.output_dtype, name
    np.testing.assert_allclose(
        np.asarray(y.astype(jnp.float32)), expected, rtol=2e-2, atol=2e-2
    )


def test_a_norm_inside_a_network_still_hands_on_the_compute_dtype(key):
    policy = jmp.get_policy("params=float32,compute=bfloat16,output=float32")
    net = pax.apply_mp_policy(
        pax.Sequential(pax.Linear(3, 4, rng_key=key), pax.LayerNorm(4)), policy
    )
    h = net[1](jnp.ones((2, 4), jnp.bfloat16))
    assert h.dtype == jnp.bfloat16  # an inner norm: the compute dtype
    assert net(jnp.ones((2, 3))).dtype == jnp.float32  # the net: output dtype


# ---------------------------------------------------------------------------
# recurrent cores unroll under any policy
# ---------------------------------------------------------------------------


def _cores(key):
    k = jax.random.split(key, 6)
    return {
        "VanillaRNN": (pax.VanillaRNN(3, 4, rng_key=k[0]), (2, 3)),
        "LSTM": (pax.LSTM(3, 4, rng_key=k[1]), (2, 3)),
        "GRU": (pax.GRU(3, 4, rng_key=k[2]), (2, 3)),
        "Conv1DLSTM": (pax.Conv1DLSTM((5, 3), 2, 3, rng_key=k[3]), (2, 5, 3)),
        "DeepRNN": (
            pax.nn.DeepRNN(
                [pax.LSTM(3, 4, rng_key=k[4]), jax.nn.relu, pax.GRU(4, 4, rng_key=k[5])]
            ),
            (2, 3),
        ),
        "ResetCore": (pax.ResetCore(pax.GRU(3, 4, rng_key=k[2])), (2, 3)),
    }


CORE_NAMES = ["VanillaRNN", "LSTM", "GRU", "Conv1DLSTM", "DeepRNN", "ResetCore"]
CORE_POLICIES = [
    "params=float32,compute=bfloat16,output=bfloat16",
    "params=float32,compute=float16,output=float32",
    "params=float32,compute=float32,output=bfloat16",
    "params=bfloat16,compute=bfloat16,output=bfloat16",
]


def _inputs(name, key, shape, steps=3):
    xs = jax.random.normal(key, (steps, *shape))
    if name == "ResetCore":
        resets = jnp.array([[False, False], [True, False], [False, True]])
        return (xs, resets)
    return xs


def _dtypes(tree):
    return [x.dtype for x in jax.tree_util.tree_leaves(tree)]


def _hand_unroll(core, xs, state):
    """The definition of an unroll: a Python loop over the core's steps."""
    states, ys = [], []
    for t in range(jax.tree_util.tree_leaves(xs)[0].shape[0]):
        state, y = core(state, jax.tree_util.tree_map(lambda a, t=t: a[t], xs))
        states.append(state)
        ys.append(y)
    return states, jnp.stack(ys)


@jax.jit
def _all_unrolls(mp, core, xs):
    state0 = mp.initial_state(2)
    return {
        "state0": state0,
        "hand": _hand_unroll(mp, xs, state0),
        "dynamic": pax.nn.dynamic_unroll(mp, xs, state0),
        "static": pax.nn.static_unroll(mp, xs, state0),
        "float32": _hand_unroll(core, xs, core.initial_state(2))[1],
    }


# every core under the two kinds of policy (a low-precision output, so the
# state changes dtype in the step; a low-precision compute with a float32
# output); the two others for the core types with their own gate math
CORE_CASES = [(n, p) for n in CORE_NAMES for p in CORE_POLICIES[:2]] + [
    (n, p) for n in ("LSTM", "GRU") for p in CORE_POLICIES[2:]
]


@pytest.mark.parametrize("name, policy", CORE_CASES)
def test_cores_unroll_under_any_policy(name, policy, key):
    policy = jmp.get_policy(policy)
    core, shape = _cores(key)[name]
    mp = pax.apply_mp_policy(core, policy)
    xs = _inputs(name, key, shape)
    r = _all_unrolls(mp, core, xs)
    state0 = r["state0"]
    # the initial state is in the dtype the step returns the state in
    assert set(_dtypes(state0)) == {jnp.dtype(policy.output_dtype)}
    states, hand = r["hand"]
    for state in states:
        assert _dtypes(state) == _dtypes(state0)
    for unroll in ("dynamic", "static"):
        final, ys = r[unroll]
        assert ys.dtype == policy.output_dtype, unroll
        assert _dtypes(final) == _dtypes(state0), unroll
        np.testing.assert_allclose(
            np.asarray(ys.astype(jnp.float32)),
            np.asarray(hand.astype(jnp.float32)),
            rtol=1e-2,
            atol=1e-2,
        )
        # a loose check against the float32 computation (no policy)
        np.testing.assert_allclose(
            np.asarray(ys.astype(jnp.float32)),
            np.asarray(r["float32"]),
            rtol=1e-1,
            atol=5e-2,
        )
        for a, b in zip(
            jax.tree_util.tree_leaves(final), jax.tree_util.tree_leaves(states[-1])
        ):
            np.testing.assert_allclose(
                np.asarray(a.astype(jnp.float32)),
                np.asarray(b.astype(jnp.float32)),
                rtol=1e-2,
                atol=1e-2,
            )


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_unrolls_keep_the_carry_in_the_initial_state_dtype(name, key):
    """A state built in another dtype than the step returns (here float32
    under a bfloat16 output policy) is the carry's dtype throughout."""
    policy = jmp.get_policy("params=float32,compute=bfloat16,output=bfloat16")
    core, shape = _cores(key)[name]
    mp = pax.apply_mp_policy(core, policy)
    state0 = mp.initial_state(2, dtype=jnp.float32)  # an explicit dtype is kept
    assert set(_dtypes(state0)) == {jnp.dtype(jnp.float32)}
    xs = _inputs(name, key, shape)
    for unroll in (pax.nn.dynamic_unroll, pax.nn.static_unroll):
        final, ys = unroll(mp, xs, state0, return_all_states=True)
        assert set(_dtypes(final)) == {jnp.dtype(jnp.float32)}, unroll.__name__
        assert ys.dtype == jnp.bfloat16
    jitted = jax.jit(lambda m, xs, s: pax.nn.dynamic_unroll(m, xs, s))
    final, _ = jitted(mp, xs, state0)
    assert set(_dtypes(final)) == {jnp.dtype(jnp.float32)}


class Containers(pax.Module):
    """Arrays held in containers: a list, a dict, and a list mixing a
    submodule with an array; a counter dict of state updated by the call."""

    def __init__(self, key):
        super().__init__()
        k1, k2, k3 = jax.random.split(key, 3)
        self.ws = [jax.random.normal(k1, (3, 4)), jnp.arange(4, dtype=jnp.float32)]
        self.head = {"w": jax.random.normal(k2, (4, 2)), "steps": jnp.array(0)}
        self.mixed = [pax.Linear(2, 2, rng_key=k3), jnp.full((2,), 0.5)]
        self.seen = {"last": jnp.zeros((2,))}

    def __call__(self, x):
        # record the dtypes the body computes with
        self.seen = {"last": jnp.zeros((2,), self.mixed[1].dtype) + x[0, :2]}
        h = x @ self.ws[0] + self.ws[1][None]
        y = h @ self.head["w"]
        return self.mixed[0](y) * self.mixed[1][None]


def test_arrays_inside_containers_follow_the_policy(key):
    model = Containers(key)
    bf = jnp.bfloat16
    policy = jmp.get_policy("params=bfloat16,compute=bfloat16,output=float32")
    mp = pax.apply_mp_policy(model, policy)
    # stored in the param dtype; integer leaves untouched
    assert mp.ws[0].dtype == bf and mp.ws[1].dtype == bf
    assert mp.head["w"].dtype == bf and mp.head["steps"].dtype == jnp.int32
    assert mp.mixed[1].dtype == bf and mp.mixed[0].weight.dtype == bf
    x = jax.random.normal(key, (5, 3))
    new, y = pax.purecall(mp, x)
    assert y.dtype == jnp.float32
    # the state the body wrote (in the compute dtype) is stored back in the
    # dtype it is stored in, the param dtype
    assert new.seen["last"].dtype == bf
    np.testing.assert_allclose(new.seen["last"], x[0, :2].astype(bf), rtol=1e-2)
    # an independent computation in bfloat16 with the module's own weights
    w0, b0 = (a.astype(bf) for a in model.ws)
    lin = model.mixed[0]
    h = x.astype(bf) @ w0 + b0[None]
    z = h @ model.head["w"].astype(bf)
    z = z @ lin.weight.astype(bf) + lin.bias.astype(bf)[None]
    expected = (z * model.mixed[1].astype(bf)[None]).astype(jnp.float32)
    np.testing.assert_allclose(y, expected, rtol=1e-2, atol=1e-2)
    # unwrap gives float32 containers back (values rounded through bfloat16)
    back = pax.unwrap_mp_policy(new)
    assert type(back) is Containers
    assert back.ws[0].dtype == jnp.float32 and back.head["w"].dtype == jnp.float32
    assert back.mixed[1].dtype == jnp.float32 and back.seen["last"].dtype == jnp.float32
    np.testing.assert_allclose(back.ws[0], model.ws[0], rtol=1e-2)


def test_a_shared_dict_of_arrays_follows_the_policy(key):
    w = jax.random.normal(key, (3, 3))
    tied = pax.Shared(
        {"a": w, "b": w.T},
        where=lambda t: t["b"],
        get=lambda t: t["a"].T,
    )
    policy = jmp.get_policy("params=bfloat16,compute=bfloat16,output=bfloat16")
    mp = pax.apply_mp_policy(tied, policy)
    assert mp.tree["a"].dtype == jnp.bfloat16
    assert mp.rebuild()["b"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        mp.rebuild()["b"].astype(jnp.float32),
        w.T.astype(jnp.bfloat16).astype(jnp.float32),
    )
