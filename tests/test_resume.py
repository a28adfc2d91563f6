"""A resumed run continues exactly: 2N steps == N steps + save + load + N steps.

Training state includes trainable parameters, BatchNorm statistics, Dropout
rng keys and the optimizer's state (Adam moments, step count, schedule).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pax


def setup(key):
    k1, k2, k3 = jax.random.split(key, 3)
    model = pax.Sequential(
        pax.Conv2D(1, 4, 3, rng_key=k1),
        pax.BatchNorm2D(4),
        jax.nn.relu,
        pax.Flatten(),
        pax.Dropout(0.25, rng_key=k2),
        pax.Linear(4 * 5 * 5, 3, rng_key=k3),
    )
    tx = optax.adam(optax.exponential_decay(1e-2, 1, 0.9))
    return model, pax.optim.from_optax(tx, model.parameters())


def loss_fn(model, x, y):
    model, logits = pax.purecall(model, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (loss, model)


def batches(n):
    rng = np.random.default_rng(0)
    for _ in range(n):
        yield (
            rng.normal(size=(8, 5, 5, 1)).astype(np.float32),
            rng.integers(0, 3, size=8).astype(np.int32),
        )


def test_two_n_steps_equal_n_plus_save_load_plus_n(tmp_path, key):
    update_fn = jax.jit(pax.utils.build_update_fn(loss_fn))
    data = list(batches(6))

    model, opt = setup(key)
    for x, y in data:
        model, opt, _ = update_fn(model, opt, x, y)
    straight = (model, opt)

    model, opt = setup(key)
    for x, y in data[:3]:
        model, opt, _ = update_fn(model, opt, x, y)
    path = tmp_path / "state.npz"
    pax.save(path, (model, opt))
    del model, opt
    fresh_model, fresh_opt = setup(jax.random.PRNGKey(123))  # other values, same shape
    model, opt = pax.load(path, (fresh_model, fresh_opt))
    for x, y in data[3:]:
        model, opt, _ = update_fn(model, opt, x, y)
    resumed = (model, opt)

    # the optimizer's schedule function is static data, a fresh closure per
    # setup(): compare key paths and leaves
    a = jax.tree_util.tree_flatten_with_path(straight)[0]
    b = jax.tree_util.tree_flatten_with_path(resumed)[0]
    assert [p for p, _ in a] == [p for p, _ in b]
    for (_, x), (_, y) in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the state really moved: statistics, dropout key and Adam's count
    assert int(resumed[0][1].mean_ema.counter) == 6
    assert int(resumed[1].state[0].count) == 6
    assert not jnp.array_equal(resumed[0][4].rng_key, setup(key)[0][4].rng_key)
