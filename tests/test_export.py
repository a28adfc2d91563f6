"""pax.export_inference: a trained model exported with a symbolic batch size,
serialized to a file and run in a fresh Python process that cannot import
PAX, giving the parent's outputs."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

# The child: PAX is made unimportable (`import pax` raises), so the artifact
# can only run if it needs nothing but jax.
_CHILD = textwrap.dedent(
    """
    import sys
    sys.modules["pax"] = None  # any `import pax...` now raises ImportError
    import jax, numpy as np
    artifact, *inputs = sys.argv[1:]
    with open(artifact, "rb") as f:
        exported = jax.export.deserialize(bytearray(f.read()))
    print(exported.in_avals)
    for name in inputs:
        np.save(name + ".out.npy", np.asarray(exported.call(np.load(name))))
    assert not [m for m in sys.modules if m.split(".")[0] == "pax"
                and sys.modules[m] is not None], "PAX was imported"
    """
)


def _trained_cnn():
    """A small CNN whose BatchNorm holds statistics from one training step."""
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    model = pax.Sequential(
        pax.Conv2D(1, 4, 3, rng_key=k[0]),
        pax.BatchNorm2D(4, rng_key=k[1]),
        jax.nn.relu,
        lambda x: x.reshape(x.shape[0], -1),  # symbolic batch size here
        pax.Linear(4 * 6 * 6, 3, rng_key=k[2]),
    )
    x = jnp.sin(jnp.arange(8 * 36.0)).reshape(8, 6, 6, 1) + 0.5
    model, _ = pax.purecall(model, x)  # training mode: updates the statistics
    return model


def test_exported_cnn_runs_in_a_fresh_process_without_pax(tmp_path):
    model = _trained_cnn()
    exported = pax.export_inference(model, jnp.zeros((1, 6, 6, 1)))
    assert str(exported.in_avals[0]) == "float32[b,6,6,1]"
    artifact = tmp_path / "cnn.jax"
    artifact.write_bytes(exported.serialize())

    inputs, expected = [], []
    for batch in (3, 5):
        x = np.cos(np.arange(batch * 36.0, dtype=np.float32)).reshape(batch, 6, 6, 1)
        name = str(tmp_path / f"x{batch}.npy")
        np.save(name, x)
        inputs.append(name)
        expected.append(np.asarray(model.eval()(x)))  # eval: running statistics
    _, train_out = pax.purecall(model, np.load(inputs[0]))  # batch statistics
    assert not np.allclose(expected[0], train_out)  # so eval mode matters

    child = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD, str(artifact), *inputs],
        cwd=tmp_path,  # -I: neither the cwd nor PYTHONPATH is on sys.path
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert "float32[b,6,6,1]" in child.stdout
    for name, want in zip(inputs, expected):
        got = np.load(name + ".out.npy")
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_child_cannot_import_pax(tmp_path):
    """The isolation the test above relies on: `import pax` fails there."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pax"] = None
        try:
            import pax.nn
        except ImportError:
            print("blocked")
        """
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.stdout.strip() == "blocked", out.stderr


def test_one_batch_dimension_shared_by_all_arguments():
    mlp = pax.nets.MLP(3, [4, 2], rng_key=jax.random.PRNGKey(0))
    exported = pax.export_inference(
        lambda x, y: mlp(x) + y, jnp.zeros((1, 3)), jnp.zeros((1, 2))
    )
    assert [str(a) for a in exported.in_avals] == [
        "float32[b,3]",
        "float32[b,2]",
    ]
    x, y = jnp.ones((4, 3)), jnp.ones((4, 2))
    np.testing.assert_allclose(exported.call(x, y), mlp(x) + y, rtol=1e-6)
    with pytest.raises(Exception, match="b"):  # batch sizes 4 and 2 disagree
        exported.call(x, jnp.ones((2, 2)))


def test_batch_axis_and_fixed_shapes():
    f = lambda x: x.sum(axis=0)  # noqa: E731
    exported = pax.export_inference(f, jnp.zeros((3, 1)), batch_axis=1)
    assert str(exported.in_avals[0]) == "float32[3,b]"
    fixed = pax.export_inference(f, jnp.zeros((3, 2)), batch_axis=None)
    assert str(fixed.in_avals[0]) == "float32[3,2]"
    with pytest.raises(ValueError, match="scalar"):
        pax.export_inference(f, jnp.zeros(()))
    with pytest.raises(TypeError, match="a pax.Module or a function"):
        pax.export_inference(3, jnp.zeros((1,)))
