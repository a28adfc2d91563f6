"""VectorQuantizer and VectorQuantizerEMA: the VQ-VAE paper's equations written
out in numpy, straight-through and codebook gradients, EMA codebook updates,
modes and purity, cross-replica statistics, dtypes, Haiku parity, errors."""

import json
import os
import subprocess
import sys
import textwrap

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

D, K, BETA = 3, 6, 0.25
KEYS = {"quantize", "loss", "perplexity", "encodings", "encoding_indices", "distances"}


# ---------------------------------------------------------------------------
# An independent reference: van den Oord et al. (2017), in float64 numpy
# ---------------------------------------------------------------------------


def paper_vq(x, embeddings):
    """Nearest code by squared distance, computed pairwise (no expansion)."""
    x = np.asarray(x, np.float64)
    codes = np.asarray(embeddings, np.float64).T  # [K, D], one code per row
    flat = x.reshape(-1, codes.shape[1])
    distances = np.sum((flat[:, None, :] - codes[None, :, :]) ** 2, axis=-1)
    idx = np.argmin(distances, axis=1)
    onehot = np.eye(codes.shape[0])[idx]
    usage = onehot.mean(axis=0)
    used = usage[usage > 0]
    return {
        "flat": flat,
        "distances": distances,
        "idx": idx,
        "onehot": onehot,
        "quantize": codes[idx].reshape(x.shape),
        "encoding_indices": idx.reshape(x.shape[:-1]),
        # ||sg[z_e] - e||^2 and ||z_e - sg[e]||^2 have the same value
        "mse": np.mean((codes[idx] - flat) ** 2),
        "perplexity": np.exp(-np.sum(used * np.log(used))),
    }


def check_outputs(out, ref, loss):
    assert set(out) == KEYS
    np.testing.assert_array_equal(out["encoding_indices"], ref["encoding_indices"])
    np.testing.assert_array_equal(out["encodings"], ref["onehot"])
    np.testing.assert_allclose(out["quantize"], ref["quantize"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["distances"], ref["distances"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(out["perplexity"], ref["perplexity"], rtol=1e-5)


def normal(key, shape, scale=1.0):
    return scale * jax.random.normal(key, shape)


# one compilation per test instead of one per primitive: keeps the file fast
purecall = jax.jit(pax.purecall)
call = jax.jit(lambda module, x: module(x))


# ---------------------------------------------------------------------------
# VectorQuantizer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_outputs_match_the_paper(jit, key):
    k1, k2 = jax.random.split(key)
    vq = pax.nets.VectorQuantizer(D, K, BETA, rng_key=k1)
    x = normal(k2, (4, 5, D), 0.6)
    run = call if jit else (lambda m, x: m(x))
    out = run(vq, x)
    ref = paper_vq(x, vq.embeddings)
    assert len(np.unique(ref["idx"])) > 2  # a meaningful assignment
    # loss = ||sg[z_e] - e||^2 + beta * ||z_e - sg[e]||^2
    check_outputs(out, ref, (1 + BETA) * ref["mse"])
    assert out["quantize"].shape == (4, 5, D)
    assert out["encoding_indices"].shape == (4, 5)
    assert out["encodings"].shape == out["distances"].shape == (20, K)
    # same behaviour in eval mode (no is_training in the call)
    check_outputs(run(vq.eval(), x), ref, (1 + BETA) * ref["mse"])


def test_quantize_method_looks_up_codes(key):
    vq = pax.nets.VectorQuantizer(D, K, BETA, rng_key=key)
    idx = jnp.array([[0, 5, 2], [2, 2, 1]])
    codes = vq.quantize(idx)
    assert codes.shape == (2, 3, D)
    np.testing.assert_array_equal(codes, np.asarray(vq.embeddings).T[np.asarray(idx)])


def test_straight_through_gradient_is_the_identity(key):
    k1, k2 = jax.random.split(key)
    vq = pax.nets.VectorQuantizer(D, K, BETA, rng_key=k1)
    x = normal(k2, (4, D))
    jac = jax.jit(jax.jacobian(lambda x: vq(x)["quantize"]))(x)
    np.testing.assert_array_equal(jac.reshape(4 * D, 4 * D), np.eye(4 * D))


def test_loss_gradients_codebook_term_and_commitment_term(key):
    k1, k2 = jax.random.split(key)
    vq = pax.nets.VectorQuantizer(D, K, BETA, rng_key=k1)
    x = normal(k2, (4, 5, D), 0.6)
    ref = paper_vq(x, vq.embeddings)
    n = x.size
    residual = ref["quantize"].reshape(-1, D) - ref["flat"]  # e - z_e
    # the codebook learns only from ||sg[z_e] - e||^2: each code moves
    # towards the vectors assigned to it
    grads = jax.jit(pax.grad(lambda m, x: m(x)["loss"]))(vq, x)
    assert type(grads) is pax.nets.VectorQuantizer
    expected = 2.0 / n * residual.T @ ref["onehot"]
    np.testing.assert_allclose(grads.embeddings, expected, rtol=1e-5, atol=1e-7)
    assert np.count_nonzero(np.abs(expected).sum(0)) > 1
    # the encoder output gets only beta * ||z_e - sg[e]||^2
    gx = jax.jit(jax.grad(lambda x: vq(x)["loss"]))(x)
    np.testing.assert_allclose(
        gx.reshape(-1, D), -2.0 * BETA / n * residual, rtol=1e-5, atol=1e-7
    )


def test_codebook_is_the_only_trainable_parameter(key):
    vq = pax.nets.VectorQuantizer(D, K, BETA, rng_key=key)
    leaves = jax.tree_util.tree_leaves(vq.parameters())
    assert len(leaves) == 1 and leaves[0] is vq.embeddings
    assert vq.embeddings.shape == (D, K) and vq.embeddings.dtype == jnp.float32


def test_initial_codebook_is_haikus_variance_scaling_uniform(key):
    dim, num = 16, 2048
    ours = np.asarray(pax.nets.VectorQuantizer(dim, num, BETA, rng_key=key).embeddings)
    f = hk.transform(lambda x: hk.nets.VectorQuantizer(dim, num, BETA)(x, False))
    theirs = np.asarray(
        jax.jit(f.init)(key, jnp.zeros((1, dim)))["vector_quantizer"]["embeddings"]
    )
    bound = np.sqrt(3.0 / dim)  # uniform with variance 1 / fan_in
    for e in (ours, theirs):
        assert np.abs(e).max() <= bound and np.abs(e).max() > 0.99 * bound
        assert abs(e.var() * dim - 1.0) < 0.05 and abs(e.mean()) < 0.01
    same = pax.nets.VectorQuantizerEMA(dim, num, BETA, 0.9, rng_key=key).embeddings
    np.testing.assert_array_equal(same, ours)


def test_parity_with_haiku_outputs_and_gradients(key):
    k1, k2 = jax.random.split(key)
    vq = pax.nets.VectorQuantizer(D, K, BETA, rng_key=k1)
    x = normal(k2, (2, 2, 3, D), 0.6)
    f = hk.transform(lambda x: hk.nets.VectorQuantizer(D, K, BETA)(x, True))
    params = {"vector_quantizer": {"embeddings": vq.embeddings}}
    theirs = jax.jit(f.apply)(params, None, x)
    ours = call(vq, x)
    assert set(ours) == set(theirs) == KEYS
    for name in KEYS:
        assert ours[name].shape == theirs[name].shape, name
        assert ours[name].dtype == theirs[name].dtype, name
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, err_msg=name)
    g_theirs = jax.jit(jax.grad(lambda p: f.apply(p, None, x)["loss"]))(params)
    g_ours = jax.jit(pax.grad(lambda m: m(x)["loss"]))(vq)
    np.testing.assert_allclose(
        g_ours.embeddings, g_theirs["vector_quantizer"]["embeddings"], rtol=1e-5
    )


# ---------------------------------------------------------------------------
# VectorQuantizerEMA
# ---------------------------------------------------------------------------


def make_ema_vq(key, decay=0.8, epsilon=1e-5, **kw):
    return pax.nets.VectorQuantizerEMA(
        D, K, BETA, decay=decay, epsilon=epsilon, rng_key=key, **kw
    )


def test_ema_codebook_updates_match_the_paper(key):
    decay, eps = 0.8, 1e-5
    k1, *ks = jax.random.split(key, 4)
    vq = make_ema_vq(k1, decay, eps)
    e0 = np.array(vq.embeddings)
    e0[:, 0] = 100.0  # code 0 is far from every input: unused at step 1
    vq = vq.replace(embeddings=jnp.asarray(e0, jnp.float32))
    xs = [normal(k, (4, 5, D), 0.6) for k in ks]
    embeddings = e0.astype(np.float64)
    hidden_n, hidden_m = np.zeros(K), np.zeros((D, K))
    for t, x in enumerate(xs, start=1):
        ref = paper_vq(x, embeddings)  # the call uses the codebook before it
        vq, out = purecall(vq, x)
        check_outputs(out, ref, BETA * ref["mse"])  # commitment loss only
        # N_i and m_i: zero-debiased moving averages of counts and sums
        hidden_n = decay * hidden_n + (1 - decay) * ref["onehot"].sum(0)
        hidden_m = decay * hidden_m + (1 - decay) * ref["flat"].T @ ref["onehot"]
        n_avg, m_avg = hidden_n / (1 - decay**t), hidden_m / (1 - decay**t)
        np.testing.assert_allclose(vq.ema_cluster_size.averages, n_avg, rtol=1e-5)
        np.testing.assert_allclose(vq.ema_dw.averages, m_avg, rtol=1e-5, atol=1e-6)
        # Laplace smoothing, then e_i = m_i / N_i
        total = n_avg.sum()
        smoothed = (n_avg + eps) / (total + K * eps) * total
        embeddings = m_avg / smoothed
        np.testing.assert_allclose(vq.embeddings, embeddings, rtol=1e-5, atol=1e-6)
        if t == 1:
            # an unused code: m_0 = N_0 = 0; smoothing keeps it finite (zero)
            assert ref["onehot"][:, 0].sum() == 0
            np.testing.assert_array_equal(vq.embeddings[:, 0], np.zeros(D))
        assert int(vq.ema_cluster_size.counter) == int(vq.ema_dw.counter) == t
    assert vq.embeddings.dtype == jnp.float32


def test_ema_training_call_needs_purecall_and_eval_changes_nothing(key):
    k1, k2 = jax.random.split(key)
    vq = make_ema_vq(k1)
    x = normal(k2, (4, 5, D))
    assert vq.training
    with pytest.raises(pax.MutationError):
        vq(x)
    new, _ = purecall(vq, x)
    assert not np.array_equal(new.embeddings, vq.embeddings)
    assert int(new.ema_dw.counter) == 1 and int(vq.ema_dw.counter) == 0  # original kept
    # eval mode: a plain call, and even inside purecall the state is untouched
    ev = new.eval()
    out = ev(x)
    ref = paper_vq(x, new.embeddings)
    check_outputs(out, ref, BETA * ref["mse"])
    after, _ = purecall(ev, x)
    for a, b in zip(jax.tree_util.tree_leaves(after), jax.tree_util.tree_leaves(ev)):
        np.testing.assert_array_equal(a, b)
    # back to training mode: updates again
    again, _ = purecall(ev.train(), x)
    assert int(again.ema_dw.counter) == 2


def test_ema_has_no_trainable_parameters_and_passes_gradients_to_x(key):
    k1, k2 = jax.random.split(key)
    vq = make_ema_vq(k1)
    assert jax.tree_util.tree_leaves(vq.parameters()) == []
    x = normal(k2, (5, D))
    jac = jax.jit(jax.jacobian(lambda x: pax.purecall(vq, x)[1]["quantize"]))(x)
    np.testing.assert_array_equal(jac.reshape(5 * D, 5 * D), np.eye(5 * D))
    ref = paper_vq(x, vq.embeddings)
    gx = jax.jit(jax.grad(lambda x: vq.eval()(x)["loss"]))(x)
    expected = 2.0 * BETA / x.size * (ref["flat"] - ref["quantize"])
    np.testing.assert_allclose(gx, expected, rtol=1e-5, atol=1e-7)


def test_ema_parity_with_haiku_over_training_steps(key):
    k1, *ks = jax.random.split(key, 4)
    vq = make_ema_vq(k1, decay=0.7)

    def fwd(x, is_training):
        return hk.nets.VectorQuantizerEMA(D, K, BETA, decay=0.7)(x, is_training)

    f = hk.transform_with_state(fwd)
    apply = jax.jit(f.apply, static_argnums=4)
    xs = [normal(k, (4, 5, D), 0.6) for k in ks]
    _, state = f.init(k1, xs[0], True)
    state = {**state, "vector_quantizer_ema": {"embeddings": vq.embeddings}}
    pre = "vector_quantizer_ema/~/"
    for x in [*xs, xs[0]]:
        theirs, state = apply({}, state, None, x, True)
        vq, ours = purecall(vq, x)
        for name in KEYS:
            assert ours[name].shape == theirs[name].shape, name
            assert ours[name].dtype == theirs[name].dtype, name
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5)
        np.testing.assert_allclose(
            vq.embeddings, state["vector_quantizer_ema"]["embeddings"], rtol=1e-5
        )
        for hk_name in ("ema_cluster_size", "ema_dw"):
            ema, s = getattr(vq, hk_name), state[pre + hk_name]
            np.testing.assert_allclose(ema.averages, s["average"], rtol=1e-5)
            np.testing.assert_allclose(ema.hidden, s["hidden"], rtol=1e-5)
            assert int(ema.counter) == int(s["counter"])
    assert int(vq.ema_dw.counter) == 4
    theirs, _ = apply({}, state, None, xs[1], False)
    ours = call(vq.eval(), xs[1])
    for name in KEYS:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5)


def test_cross_replica_axis_pools_statistics_over_replicas(key):
    k1, k2 = jax.random.split(key)
    x = normal(k2, (4, 5, D), 0.6)  # 4 "replicas" of 5 vectors
    pooled = make_ema_vq(k1, cross_replica_axis="i")
    per_replica = jax.vmap(
        pax.purecall, in_axes=(None, 0), out_axes=(0, 0), axis_name="i"
    )
    new, out = jax.jit(per_replica)(pooled, x)
    single, ref = purecall(make_ema_vq(k1), x.reshape(20, D))
    for r in range(4):
        np.testing.assert_allclose(new.embeddings[r], single.embeddings, rtol=1e-5)
        np.testing.assert_allclose(
            new.ema_cluster_size.averages[r], single.ema_cluster_size.averages
        )
    np.testing.assert_allclose(out["perplexity"], ref["perplexity"], rtol=1e-5)
    # the plain quantizer averages code usage for its perplexity the same way
    vq = pax.nets.VectorQuantizer(D, K, BETA, cross_replica_axis="i", rng_key=k1)
    out = jax.jit(jax.vmap(lambda x: vq(x), axis_name="i"))(x)
    whole = paper_vq(x, vq.embeddings)
    assert len(np.unique(whole["idx"])) > 2
    np.testing.assert_allclose(out["perplexity"], whole["perplexity"], rtol=1e-5)


# ---------------------------------------------------------------------------
# dtypes: Haiku's rule (promotion of the input's and the codebook's dtypes)
# ---------------------------------------------------------------------------


def float_dtypes(out):
    return {k: v.dtype for k, v in out.items() if k != "encoding_indices"}


def test_bfloat16_input_promotes_with_the_codebook_as_in_haiku(key):
    k1, k2 = jax.random.split(key)
    x = normal(k2, (4, 5, D)).astype(jnp.bfloat16)
    vq = pax.nets.VectorQuantizer(D, K, BETA, rng_key=k1)
    f = hk.transform(lambda x: hk.nets.VectorQuantizer(D, K, BETA)(x, True))
    theirs = jax.jit(f.apply)(
        {"vector_quantizer": {"embeddings": vq.embeddings}}, None, x
    )
    ours = call(vq, x)
    assert float_dtypes(ours) == float_dtypes(theirs)
    assert set(float_dtypes(ours).values()) == {jnp.dtype(jnp.float32)}
    assert ours["encoding_indices"].dtype == theirs["encoding_indices"].dtype
    # a float32 codebook keeps float32 state after a bfloat16 training step
    ema, out = purecall(make_ema_vq(k1), x)
    assert set(float_dtypes(out).values()) == {jnp.dtype(jnp.float32)}
    for leaf in jax.tree_util.tree_leaves(ema):
        assert leaf.dtype in (jnp.float32, jnp.int32)


def test_bfloat16_codebook_computes_in_bfloat16(key):
    k1, k2 = jax.random.split(key)
    x = normal(k2, (4, 5, D)).astype(jnp.bfloat16)
    for vq in (
        pax.nets.VectorQuantizer(D, K, BETA, jnp.bfloat16, rng_key=k1),
        make_ema_vq(k1, dtype=jnp.bfloat16),
    ):
        assert vq.embeddings.dtype == jnp.bfloat16
        new, out = purecall(vq, x)
        assert set(float_dtypes(out).values()) == {jnp.dtype(jnp.bfloat16)}
        assert new.embeddings.dtype == jnp.bfloat16
        assert bool(jnp.isfinite(out["loss"])) and float(out["perplexity"]) > 1


FLOAT64_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp
    import pax

    assert jax.config.jax_enable_x64
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 3), jnp.float64)
    res = {}
    for vq in (pax.nets.VectorQuantizer(3, 4, 0.25),
               pax.nets.VectorQuantizerEMA(3, 4, 0.25, 0.9)):
        new, out = jax.jit(pax.purecall)(vq, x)
        res[type(vq).__name__] = {
            "outputs": sorted({str(v.dtype) for k, v in out.items()
                               if k != "encoding_indices"}),
            "state": sorted({str(v.dtype) for v in jax.tree_util.tree_leaves(new)}),
        }
    print(json.dumps(res))
    """
)


def test_float64_input_gives_float64_outputs_and_keeps_the_state_dtype():
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-c", FLOAT64_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["VectorQuantizer"] == {"outputs": ["float64"], "state": ["float32"]}
    assert res["VectorQuantizerEMA"] == {
        "outputs": ["float64"],
        "state": ["float32", "int32"],
    }


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ["VectorQuantizer", "VectorQuantizerEMA"])
def test_wrong_input_shape_names_the_module(cls, key):
    args = (4, 8, 0.25) if cls == "VectorQuantizer" else (4, 8, 0.25, 0.9)
    vq = getattr(pax.nets, cls)(*args, rng_key=key).eval()
    with pytest.raises(
        ValueError,
        match=rf"^{cls}\(embedding_dim=4, num_embeddings=8.*expected input with "
        r"last dimension 4, got shape \(2, 5\)",
    ):
        vq(jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"last dimension 4, got shape \(\)"):
        vq(jnp.ones(()))
    with pytest.raises(TypeError, match=rf"{cls}.*expected an array"):
        vq("not an array")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"embedding_dim": 0}, ValueError, "`embedding_dim` must be a positive int"),
        ({"num_embeddings": 2.5}, TypeError, "`num_embeddings` must be a positive"),
        ({"commitment_cost": -0.1}, ValueError, r"`commitment_cost` must be >= 0"),
        ({"commitment_cost": "x"}, TypeError, r"`commitment_cost` must be a number"),
        ({"dtype": jnp.int32}, TypeError, r"`dtype` must be a floating dtype"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, message):
    base = {"embedding_dim": 4, "num_embeddings": 8, "commitment_cost": 0.25}
    with pytest.raises(error, match=rf"^VectorQuantizer: {message}"):
        pax.nets.VectorQuantizer(**{**base, **kwargs})
    with pytest.raises(error, match=rf"^VectorQuantizerEMA: {message}"):
        pax.nets.VectorQuantizerEMA(**{**base, "decay": 0.9, **kwargs})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"decay": 1.0}, r"`decay` must be in \[0, 1\), got 1.0"),
        ({"decay": -0.5}, r"`decay` must be in \[0, 1\), got -0.5"),
        ({"epsilon": 0.0}, r"`epsilon` must be > 0, got 0.0"),
        ({"decay": float("nan")}, r"`decay` must be finite"),
    ],
)
def test_bad_ema_arguments(kwargs, message):
    base = {"embedding_dim": 4, "num_embeddings": 8, "commitment_cost": 0.25}
    with pytest.raises(ValueError, match=rf"^VectorQuantizerEMA: {message}"):
        pax.nets.VectorQuantizerEMA(**{**base, "decay": 0.9, **kwargs})


def test_ema_training_plain_call_error_names_the_quantizer(key):
    k1, k2 = jax.random.split(key)
    vq = make_ema_vq(k1)
    x = normal(k2, (4, D))
    with pytest.raises(pax.MutationError) as info:
        vq(x)
    first = str(info.value).splitlines()[0]
    assert first.startswith("VectorQuantizerEMA("), first
    assert "purecall" in first and "eval()" in first
