"""BatchNorm's modes: a training-mode plain call is refused with an error that
names the BatchNorm the user called (not its inner EMA); eval mode changes
nothing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax


@pytest.mark.parametrize(
    "make, shape, name",
    [
        (lambda: pax.BatchNorm1D(3), (2, 4, 3), "BatchNorm1D"),
        (lambda: pax.BatchNorm2D(3, data_format="NCHW"), (2, 3, 2, 2), "BatchNorm2D"),
        (lambda: pax.BatchNorm(3), (5, 3), "BatchNorm"),
    ],
)
def test_training_plain_call_error_names_the_batchnorm(make, shape, name, key):
    bn = make()
    x = jax.random.normal(key, shape)
    with pytest.raises(pax.MutationError) as info:
        bn(x)
    text = str(info.value)
    first = text.splitlines()[0]
    assert first.startswith(f"{name}(num_channels=3"), text
    assert "purecall" in first and "eval()" in first
    # eval mode: a plain call that leaves every leaf as it was
    ev = bn.eval()
    y = ev(x)
    assert y.shape == x.shape
    for a, b in zip(jax.tree_util.tree_leaves(ev), jax.tree_util.tree_leaves(bn)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_error_inside_a_container_names_the_batchnorm():
    net = pax.Sequential(pax.Linear(2, 3), pax.BatchNorm(3))
    with pytest.raises(pax.MutationError, match=r"^BatchNorm\(num_channels=3"):
        net(jnp.ones((4, 2)))
