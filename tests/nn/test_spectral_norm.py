"""SpectralNorm and SNParamsTree: numerics against numpy/SVD, Haiku parity,
purity, gradients and errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn import SNParamsTree, SpectralNorm


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


def normal(rng, shape):
    """Test data from numpy: ``jax.random`` would compile once per shape."""
    return jnp.asarray(rng.standard_normal(shape), jnp.float32)


# An updating call, compiled (much faster than op-by-op for the power iteration).
step = jax.jit(pax.purecall)


def np_power_iteration(w, u0, eps, n_steps):
    """The reference: (u, v, sigma) after ``n_steps`` steps, in float64 numpy."""
    w = np.asarray(w, np.float64).reshape(-1, np.shape(w)[-1])
    u = np.asarray(u0, np.float64)
    v = None
    for _ in range(n_steps):
        v = u @ w.T
        v = v / np.sqrt(np.sum(v * v) + eps)
        u = v @ w
        u = u / np.sqrt(np.sum(u * u) + eps)
    sigma = (v @ w @ u.T)[0, 0]
    return u, v, sigma


def top_singular_value(w):
    w = np.asarray(w, np.float64)
    return np.linalg.svd(w.reshape(-1, w.shape[-1]), compute_uv=False)[0]


# ---------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------


def with_gap(rng, shape):
    """A random value whose top singular value is twice the next one, so that
    power iteration converges fast (the error shrinks like 4**-steps)."""
    m, n = int(np.prod(shape[:-1])), shape[-1]
    k = min(m, n)
    q1, _ = np.linalg.qr(rng.standard_normal((m, k)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, k)))
    s = np.concatenate([[2.0 + rng.random()], rng.random(k - 1)])
    return jnp.asarray(((q1 * s) @ q2.T).reshape(shape), jnp.float32)


@pytest.mark.parametrize("shape", [(5, 3), (3, 6), (2, 3, 4)])
def test_many_steps_give_the_top_singular_value(shape, rng, key):
    w = with_gap(rng, shape)
    # a tiny eps: with the default 1e-4, sigma is biased low by ~eps / 2
    sn = SpectralNorm(shape, eps=1e-10, n_steps=20, rng_key=key)
    sn, w_bar = pax.purecall(sn, w)
    np.testing.assert_allclose(float(sn.sigma), top_singular_value(w), rtol=1e-5)
    assert w_bar.shape == shape
    np.testing.assert_allclose(top_singular_value(w_bar), 1.0, rtol=1e-5)
    # the normalized value is the value divided by sigma (one scalar)
    np.testing.assert_allclose(
        np.asarray(w_bar) * float(sn.sigma), np.asarray(w), rtol=1e-5, atol=1e-6
    )


def test_repeated_single_steps_converge(rng, key):
    w = with_gap(rng, (6, 4))
    sn = SpectralNorm((6, 4), eps=1e-10, rng_key=key)
    for _ in range(20):
        sn, w_bar = step(sn, w)
    np.testing.assert_allclose(float(sn.sigma), top_singular_value(w), rtol=1e-5)
    np.testing.assert_allclose(top_singular_value(w_bar), 1.0, rtol=1e-5)


@pytest.mark.parametrize("n_steps", [1, 3])
@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 5)])
def test_power_iteration_matches_numpy(shape, n_steps, rng, key):
    w = normal(rng, shape)
    eps = 1e-2
    sn = SpectralNorm(shape, eps=eps, n_steps=n_steps, rng_key=key)
    assert sn.u0.shape == (1, shape[-1]) and float(sn.sigma) == 1.0
    u, _, sigma = np_power_iteration(w, sn.u0, eps, n_steps)
    new, w_bar = step(sn, w)
    np.testing.assert_allclose(np.asarray(new.u0), u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(new.sigma), sigma, rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(w_bar), np.asarray(w) / sigma, rtol=1e-5, atol=1e-6
    )
    # the original module is untouched
    assert float(sn.sigma) == 1.0


def test_update_stats_false_is_a_plain_call(rng, key):
    w = normal(rng, (4, 3))
    sn = SpectralNorm((4, 3), n_steps=2, rng_key=key)
    out = sn(w, update_stats=False)  # no purecall needed
    new, out2 = pax.purecall(sn, w, update_stats=False)
    np.testing.assert_array_equal(np.asarray(new.u0), np.asarray(sn.u0))
    assert float(new.sigma) == 1.0
    updated, out3 = pax.purecall(sn, w)
    # same output whether or not the statistics are stored
    np.testing.assert_allclose(np.asarray(out), np.asarray(out2), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out), np.asarray(out3), rtol=1e-6)
    assert not np.allclose(np.asarray(updated.u0), np.asarray(sn.u0))


def test_gradient_treats_u_and_v_as_constants(rng, key):
    w = normal(rng, (4, 3))
    c = normal(rng, (4, 3))
    eps, n_steps = 1e-4, 2
    sn = SpectralNorm((4, 3), eps=eps, n_steps=n_steps, rng_key=key)

    def loss(w, u0):
        return jnp.sum(sn.replace(u0=u0)(w, update_stats=False) * c)

    g_w, g_u0 = jax.grad(loss, argnums=(0, 1))(w, sn.u0)
    # hand formula: d/dW sum(c * W / sigma) with sigma = v W u^T, u, v fixed
    u, v, sigma = np_power_iteration(w, sn.u0, eps, n_steps)
    wn, cn = np.asarray(w, np.float64), np.asarray(c, np.float64)
    expected = cn / sigma - np.sum(cn * wn) / sigma**2 * (v.T @ u)
    np.testing.assert_allclose(np.asarray(g_w), expected, rtol=1e-4, atol=1e-5)
    # no gradient reaches u0 (stop_gradient)
    np.testing.assert_array_equal(np.asarray(g_u0), np.zeros((1, 3)))


def test_vmap_over_matrices_without_update(rng, key):
    ws = normal(rng, (3, 4, 2))
    sn = SpectralNorm((4, 2), n_steps=3, rng_key=key)
    out = jax.jit(jax.vmap(lambda w: sn(w, update_stats=False)))(ws)
    for i in range(3):
        _, _, sigma = np_power_iteration(ws[i], sn.u0, 1e-4, 3)
        np.testing.assert_allclose(np.asarray(out[i]), ws[i] / sigma, rtol=1e-5)


def test_dtypes(rng, key):
    w = normal(rng, (4, 3))
    sn = SpectralNorm((4, 3), n_steps=2, rng_key=key)
    new, out = pax.purecall(sn, w.astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    assert new.u0.dtype == jnp.float32 and new.sigma.dtype == jnp.float32
    _, _, sigma = np_power_iteration(w.astype(jnp.bfloat16), sn.u0, 1e-4, 2)
    np.testing.assert_allclose(float(new.sigma), sigma, rtol=1e-5)
    # integer values are normalized in float32
    wi = jnp.arange(12).reshape(4, 3)
    _, out_i = pax.purecall(sn, wi)
    assert out_i.dtype == jnp.float32
    _, _, sigma_i = np_power_iteration(wi, sn.u0, 1e-4, 2)
    np.testing.assert_allclose(np.asarray(out_i), np.asarray(wi) / sigma_i, rtol=1e-5)


@pytest.mark.parametrize("shape", [(5,), ()])
def test_non_matrix_values_are_returned_unchanged(shape):
    sn = SpectralNorm(shape, rng_key=jax.random.PRNGKey(0))
    assert sn.u0 is None
    x = jnp.arange(float(np.prod(shape))).reshape(shape) + 2.0
    out = sn(x)  # nothing to update: a plain call works
    np.testing.assert_array_equal(np.asarray(out), np.asarray(x))
    with pytest.raises(ValueError, match=rf"needs a matrix.*rank {len(shape)}"):
        sn(x, error_on_non_matrix=True)


def test_int_input_shape_means_a_vector():
    assert SpectralNorm(5).input_shape == (5,)


# ---------------------------------------------------------------------------
# purity
# ---------------------------------------------------------------------------


def test_updating_call_needs_pure(rng, key):
    sn = SpectralNorm((3, 2), rng_key=key)
    with pytest.raises(pax.MutationError, match=r"purecall"):
        sn(jnp.ones((3, 2)))


def test_jitted_purecall_updates_state(rng, key):
    w = normal(rng, (3, 5))
    sn = SpectralNorm((3, 5), rng_key=key)
    new, out = jax.jit(lambda m, x: pax.purecall(m, x))(sn, w)
    u, _, sigma = np_power_iteration(w, sn.u0, 1e-4, 1)
    np.testing.assert_allclose(np.asarray(new.u0), u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(new.sigma), sigma, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out), np.asarray(w) / sigma, rtol=1e-5)
    assert float(sn.sigma) == 1.0


def test_init_is_deterministic_and_unit_normal():
    a = SpectralNorm((3, 1000), rng_key=jax.random.PRNGKey(1))
    b = SpectralNorm((3, 1000), rng_key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(a.u0), np.asarray(b.u0))
    assert abs(float(jnp.mean(a.u0))) < 0.15
    assert abs(float(jnp.std(a.u0)) - 1.0) < 0.1
    assert a.parameters().u0 is None  # state, not trainable


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_wrong_value_shape_names_the_module():
    sn = SpectralNorm((3, 4), rng_key=jax.random.PRNGKey(0))
    with pytest.raises(
        ValueError,
        match=r"SpectralNorm\(input_shape=\(3, 4\).*expected a value of shape "
        r"\(3, 4\), got shape \(4, 3\)",
    ):
        sn(jnp.ones((4, 3)), update_stats=False)


def test_error_on_non_matrix_for_rank_3():
    sn = SpectralNorm((2, 3, 4), rng_key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"needs a matrix \(rank 2\).*rank 3"):
        sn(jnp.ones((2, 3, 4)), update_stats=False, error_on_non_matrix=True)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"eps": -1.0}, ValueError, r"`eps` must be a finite float >= 0, got -1.0"),
        ({"eps": float("nan")}, ValueError, r"`eps` must be a finite"),
        ({"eps": "small"}, TypeError, r"`eps` must be a float >= 0"),
        ({"n_steps": 0}, ValueError, r"`n_steps` must be a positive int, got 0"),
        ({"n_steps": 1.5}, TypeError, r"`n_steps` must be a positive int"),
        ({"input_shape": (3, 0)}, ValueError, r"`input_shape` must be a positive"),
        ({"input_shape": "ab"}, TypeError, r"`input_shape` must be a sequence"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"input_shape": (3, 4), **kwargs}
    with pytest.raises(error, match=r"SpectralNorm: " + match):
        SpectralNorm(**args)


def test_sn_params_tree_bad_arguments():
    tree = {"a": jnp.ones((2, 2))}
    with pytest.raises(ValueError, match=r"SNParamsTree: `eps`"):
        SNParamsTree(tree, eps=-1.0)
    with pytest.raises(ValueError, match=r"SNParamsTree: `n_steps`"):
        SNParamsTree(tree, n_steps=0)
    with pytest.raises(ValueError, match=r"SNParamsTree: `ignore_regex` '\(' is not"):
        SNParamsTree(tree, ignore_regex="(")
    with pytest.raises(TypeError, match=r"SNParamsTree: `ignore_regex` must be"):
        SNParamsTree(tree, ignore_regex=3)


# ---------------------------------------------------------------------------
# SNParamsTree
# ---------------------------------------------------------------------------


def params_like(rng):
    return {
        "linear": {
            "w": normal(rng, (3, 4)),
            "b": normal(rng, (4,)),
        },
        "conv": {"w": normal(rng, (2, 2, 3, 5))},
        "linear_1": {"w": normal(rng, (4, 2))},
    }


def test_sn_params_tree_normalizes_matrices_only(rng, key):
    params = params_like(rng)
    sn = SNParamsTree(params, n_steps=2, rng_key=key)
    assert sorted(sn.norms) == ["['conv']['w']", "['linear']['w']", "['linear_1']['w']"]
    new, out = step(sn, params)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(params)
    np.testing.assert_array_equal(  # vectors pass through
        np.asarray(out["linear"]["b"]), np.asarray(params["linear"]["b"])
    )
    for module, path in [("linear", "['linear']['w']"), ("conv", "['conv']['w']")]:
        w = params[module]["w"]
        u, _, sigma = np_power_iteration(w, sn.norms[path].u0, 1e-4, 2)
        np.testing.assert_allclose(np.asarray(out[module]["w"]), w / sigma, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(new.norms[path].u0), u, rtol=1e-5)
        np.testing.assert_allclose(float(new.norms[path].sigma), sigma, rtol=1e-5)


def test_sn_params_tree_ignore_regex_uses_re_match_on_keystr(rng, key):
    params = params_like(rng)
    # re.match is anchored at the start: "linear" alone matches nothing, since
    # every path string starts with "['"
    assert len(SNParamsTree(params, ignore_regex="linear").norms) == 3
    sn = SNParamsTree(params, ignore_regex=r"\['linear")
    assert list(sn.norms) == ["['conv']['w']"]
    _, out = pax.purecall(sn, params)
    assert out["linear"]["w"] is params["linear"]["w"]
    assert out["linear_1"]["w"] is params["linear_1"]["w"]
    assert not np.allclose(
        np.asarray(out["conv"]["w"]), np.asarray(params["conv"]["w"])
    )


def test_sn_params_tree_on_module_parameters(rng, key):
    net = pax.Sequential(pax.Linear(3, 4, rng_key=key), pax.Linear(4, 2, rng_key=key))
    params = net.parameters()
    sn = SNParamsTree(params, n_steps=3, rng_key=key)
    assert sorted(sn.norms) == [".layers[0].weight", ".layers[1].weight"]
    new, out = jax.jit(lambda m, p: pax.purecall(m, p))(sn, params)
    assert type(out) is pax.Sequential
    w = net.layers[1].weight
    _, _, sigma = np_power_iteration(w, sn.norms[".layers[1].weight"].u0, 1e-4, 3)
    np.testing.assert_allclose(np.asarray(out.layers[1].weight), w / sigma, rtol=1e-5)
    np.testing.assert_array_equal(
        np.asarray(out.layers[0].bias), np.asarray(net.layers[0].bias)
    )
    # the normalized parameters plug back into the network
    assert net.update_parameters(out)(jnp.ones((1, 3))).shape == (1, 2)
    assert float(new.norms[".layers[1].weight"].sigma) == pytest.approx(sigma, 1e-5)


def test_sn_params_tree_purity_and_update_stats(rng, key):
    params = params_like(rng)
    sn = SNParamsTree(params, rng_key=key)
    with pytest.raises(pax.MutationError, match=r"purecall"):
        sn(params)
    out = sn(params, update_stats=False)
    new, out2 = pax.purecall(sn, params, update_stats=False)
    for path in sn.norms:
        np.testing.assert_array_equal(
            np.asarray(new.norms[path].u0), np.asarray(sn.norms[path].u0)
        )
    np.testing.assert_allclose(
        np.asarray(out["conv"]["w"]), np.asarray(out2["conv"]["w"]), rtol=1e-6
    )


def test_sn_params_tree_mismatch_errors(rng, key):
    params = params_like(rng)
    sn = SNParamsTree(params, rng_key=key)
    missing = {**params, "linear": {"w": params["linear"]["w"]}}
    with pytest.raises(
        ValueError, match=r"SNParamsTree\(like=.*no leaf at `\['linear'\]\['b'\]`"
    ):
        sn(missing, update_stats=False)
    extra = {**params, "extra": {"w": jnp.ones((2, 2))}}
    with pytest.raises(ValueError, match=r"unexpected leaf at `\['extra'\]\['w'\]`"):
        sn(extra, update_stats=False)
    bad_shape = {**params, "linear_1": {"w": jnp.ones((2, 4))}}
    with pytest.raises(
        ValueError,
        match=r"leaf `\['linear_1'\]\['w'\]` has shape \(2, 4\), expected \(4, 2\)",
    ):
        sn(bad_shape, update_stats=False)
    sn_list = SNParamsTree({"a": [jnp.ones((2, 2)), jnp.ones((2,))]}, rng_key=key)
    with pytest.raises(ValueError, match=r"leaf paths but other containers"):
        sn_list({"a": (jnp.ones((2, 2)), jnp.ones((2,)))}, update_stats=False)


# ---------------------------------------------------------------------------
# parity with dm-haiku
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("eps, n_steps", [(1e-4, 1), (1e-2, 3)])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_parity_with_haiku_spectral_norm(shape, eps, n_steps, rng, key):
    values = [normal(rng, shape) for _ in range(3)]
    f = hk.transform_with_state(
        lambda x, update_stats=True: hk.SpectralNorm(eps=eps, n_steps=n_steps)(
            x, update_stats=update_stats
        )
    )
    params, state = f.init(key, values[0])
    sn = SpectralNorm(shape, eps=eps, n_steps=n_steps, rng_key=key)
    sn = sn.replace(u0=state["spectral_norm"]["u0"])
    for x in values:
        hk_out, state = f.apply(params, state, None, x)
        sn, out = step(sn, x)
        np.testing.assert_allclose(np.asarray(out), np.asarray(hk_out), rtol=1e-5)
        np.testing.assert_allclose(
            np.asarray(sn.u0), np.asarray(state["spectral_norm"]["u0"]), rtol=1e-5
        )
        np.testing.assert_allclose(
            float(sn.sigma), float(state["spectral_norm"]["sigma"]), rtol=1e-5
        )
    # update_stats=False: same output, state untouched, in both libraries
    hk_out, hk_state = f.apply(params, state, None, values[0] * 2, update_stats=False)
    out = sn(values[0] * 2, update_stats=False)
    np.testing.assert_allclose(np.asarray(out), np.asarray(hk_out), rtol=1e-5)
    np.testing.assert_array_equal(
        np.asarray(hk_state["spectral_norm"]["u0"]),
        np.asarray(state["spectral_norm"]["u0"]),
    )


def test_haiku_and_pax_both_refuse_rank_3_with_error_on_non_matrix():
    x = jnp.ones((2, 3, 4))
    f = hk.transform_with_state(
        lambda x: hk.SpectralNorm()(x, error_on_non_matrix=True)
    )
    with pytest.raises(ValueError):
        f.init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="error_on_non_matrix=True"):
        SpectralNorm((2, 3, 4))(x, error_on_non_matrix=True)


@pytest.mark.parametrize(
    "hk_regex, pax_regex, with_vectors",
    [
        (".*/b", r".*\['b'\]", True),
        # Haiku raises on vectors unless they are ignored: drop the biases
        ("linear_1/", r"\['linear_1'\]", False),
    ],
)
def test_parity_with_haiku_sn_params_tree(hk_regex, pax_regex, with_vectors, rng, key):
    params = params_like(rng)
    if not with_vectors:
        params = {k: {"w": v["w"]} for k, v in params.items()}
    trees = [params, jax.tree_util.tree_map(lambda x: 0.5 * x + 1.0, params)]
    f = hk.transform_with_state(
        lambda t: hk.SNParamsTree(eps=1e-3, n_steps=2, ignore_regex=hk_regex)(t)
    )
    hk_params, state = f.init(key, trees[0])
    sn = SNParamsTree(
        trees[0], eps=1e-3, n_steps=2, ignore_regex=pax_regex, rng_key=key
    )
    hk_names = {
        f"['{m}']['w']": f"sn_params_tree/{m}__w"
        for m in ("linear", "conv", "linear_1")
    }
    assert sorted(state) == sorted(hk_names[p] for p in sn.norms)
    sn = sn.replace(
        norms={p: m.replace(u0=state[hk_names[p]]["u0"]) for p, m in sn.norms.items()}
    )
    for tree in trees * 2:
        hk_out, state = f.apply(hk_params, state, None, tree)
        sn, out = step(sn, tree)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(
                np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6
            ),
            out,
            hk_out,
        )
        for p, m in sn.norms.items():
            np.testing.assert_allclose(
                np.asarray(m.u0), np.asarray(state[hk_names[p]]["u0"]), rtol=1e-5
            )
            np.testing.assert_allclose(
                float(m.sigma), float(state[hk_names[p]]["sigma"]), rtol=1e-5
            )


# ---------------------------------------------------------------------------
# modes: eval changes nothing, update_stats overrides, errors name the module
# ---------------------------------------------------------------------------


def assert_same_leaves(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_eval_plain_call_normalizes_and_changes_nothing(rng, key):
    w1, w2 = normal(rng, (4, 3)), normal(rng, (4, 3))
    sn, _ = step(SpectralNorm((4, 3), n_steps=2, rng_key=key), w1)
    ev = sn.eval()
    _, _, sigma = np_power_iteration(w2, sn.u0, 1e-4, 2)  # from the stored u0
    for out in (ev(w2), jax.jit(lambda m, w: m(w))(ev, w2)):  # plain calls
        np.testing.assert_allclose(np.asarray(out), np.asarray(w2) / sigma, rtol=1e-5)
    after, out = pax.purecall(ev, w2)  # inside pure: still nothing changes
    assert_same_leaves(after, ev)
    assert not after.training
    # explicit update_stats=True overrides eval mode (and needs pure)
    with pytest.raises(pax.MutationError, match=r"^SpectralNorm\(.*purecall"):
        ev(w2, update_stats=True)
    new, _ = pax.purecall(ev, w2, update_stats=True)
    u, _, sigma = np_power_iteration(w2, sn.u0, 1e-4, 2)
    np.testing.assert_allclose(np.asarray(new.u0), u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(new.sigma), sigma, rtol=1e-5)
    # training mode again: the default call updates
    trained, _ = pax.purecall(ev.train(), w2)
    np.testing.assert_allclose(float(trained.sigma), sigma, rtol=1e-5)
    with pytest.raises(TypeError, match=r"^SpectralNorm\(.*update_stats"):
        ev(w2, update_stats=1.0)


def test_sn_params_tree_eval_plain_call_changes_nothing(rng, key):
    params = params_like(rng)
    sn, _ = pax.purecall(SNParamsTree(params, rng_key=key), params)
    ev = sn.eval()
    other = params_like(rng)
    out = ev(other)  # a plain call
    for path, leaf in (("linear", "w"), ("conv", "w"), ("linear_1", "w")):
        norm = sn.norms[f"['{path}']['{leaf}']"]
        _, _, sigma = np_power_iteration(other[path][leaf], norm.u0, 1e-4, 1)
        np.testing.assert_allclose(
            np.asarray(out[path][leaf]),
            np.asarray(other[path][leaf]) / sigma,
            rtol=1e-5,
            atol=1e-6,
        )
    np.testing.assert_array_equal(out["linear"]["b"], other["linear"]["b"])
    after, _ = pax.purecall(ev, other)
    assert_same_leaves(after, ev)
    # the tree's mode decides, even if an inner norm was left in training mode
    mixed = ev.replace(
        norms={**ev.norms, "['linear']['w']": sn.norms["['linear']['w']"]}
    )
    assert mixed.norms["['linear']['w']"].training
    after, _ = pax.purecall(mixed, other)
    assert_same_leaves(after, mixed)
    new, _ = pax.purecall(ev, other, update_stats=True)
    norm = sn.norms["['conv']['w']"]
    u, _, _ = np_power_iteration(other["conv"]["w"], norm.u0, 1e-4, 1)
    np.testing.assert_allclose(
        np.asarray(new.norms["['conv']['w']"].u0), u, rtol=1e-5, atol=1e-6
    )


def test_sn_params_tree_error_names_the_tree_not_the_inner_norm(rng, key):
    params = params_like(rng)
    sn = SNParamsTree(params, rng_key=key)
    with pytest.raises(pax.MutationError) as info:
        sn(params)
    text = str(info.value)
    assert text.startswith("SNParamsTree(like="), text
    assert "purecall" in text and "eval()" in text
