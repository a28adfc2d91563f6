"""Property: ``pax.load`` of a damaged checkpoint (random truncations and byte
flips anywhere: zip headers, ``.npy`` headers, array data, metadata, central
directory) returns the saved values bit for bit or raises
``pax.CheckpointError``; never another exception, never a hang.

The default profile runs a small number of examples; ``test_*_thorough``
(marked slow) runs the "thorough" profile's many more.
"""

import io
import os
import signal
import struct
import zipfile

import jax
import jax.numpy as jnp
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pax
from tests.test_checkpoint import _assert_bit_identical, _perturb

# a load taking longer than this is a hang
_TIMEOUT_S = 20


def _state():
    """A real training state: a model with BatchNorm statistics, its adam
    state, a bfloat16 leaf and a typed key."""
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    model = pax.Sequential(pax.Linear(3, 4, rng_key=k[0]), pax.BatchNorm1D(4))
    model, _ = pax.purecall(model, jax.random.normal(k[1], (5, 3)))
    opt_state = optax.adam(1e-3).init(model.parameters())
    extra = {
        "bf16": jax.random.normal(k[2], (3,)).astype(jnp.bfloat16),
        "key": jax.random.key(7),
        "step": jnp.array(3),  # weakly typed
    }
    return model, opt_state, extra


def _regions(data):
    """``(start, end)`` byte ranges of the file's structures: each member's
    local zip header and ``.npy`` header, each central directory record and
    the end record; random flips are aimed at them as often as at the data."""
    regions = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    for info in infos:
        start = info.header_offset
        name_len, extra_len = struct.unpack_from("<HH", data, start + 26)
        npy = start + 30 + name_len + extra_len
        regions.append((start, npy))  # local header
        header_len = 10 + struct.unpack_from("<H", data, npy + 8)[0]
        regions.append((npy, npy + header_len))  # .npy header
    at = data.index(b"PK\x01\x02", max(i.header_offset for i in infos))
    while data[at : at + 4] == b"PK\x01\x02":  # central directory records
        lengths = struct.unpack_from("<HHH", data, at + 28)
        regions.append((at, at + 46 + sum(lengths)))
        at += 46 + sum(lengths)
    assert data[at : at + 4] == b"PK\x05\x06"
    regions.append((at, len(data)))  # end of central directory record
    return regions


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    saved = _state()
    path = tmp_path_factory.mktemp("fuzz") / "state.ckpt"
    pax.save(path, saved)
    data = path.read_bytes()
    like = jax.tree_util.tree_map(_perturb, saved)
    return saved, like, data, _regions(data)


@st.composite
def damage(draw, data, regions):
    """``(truncate to, [(position, xor mask), ...])``, positions drawn over the
    whole file or inside one of its structures."""
    n = len(data)
    flips = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            position = draw(st.integers(0, n - 1))
        else:
            start, end = draw(st.sampled_from(regions))
            position = draw(st.integers(start, end - 1))
        flips.append((position, draw(st.integers(1, 255))))
    cut = draw(st.one_of(st.just(n), st.integers(0, n - 1)))
    return cut, flips


def _damaged(data, cut, flips):
    out = bytearray(data)
    for position, mask in flips:
        out[position] ^= mask
    return bytes(out[:cut])


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang(f"pax.load took more than {_TIMEOUT_S} s")


def _check(path, saved, like, data, cut, flips):
    damaged = _damaged(data, cut, flips)
    path.write_bytes(damaged)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(_TIMEOUT_S)
    try:
        out = pax.load(path, like)
    except pax.CheckpointError as err:
        assert err.path == str(path)
        assert damaged != data
        return
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    _assert_bit_identical(out, saved)


def _run(checkpoint, tmp_path, profile, examples):
    saved, like, data, regions = checkpoint
    path = tmp_path / "damaged.ckpt"

    @settings(
        settings.get_profile(profile),
        max_examples=examples,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
        ],
    )
    @given(damage(data, regions))
    def prop(mutation):
        _check(path, saved, like, data, *mutation)

    prop()


def test_damaged_checkpoint_loads_exactly_or_raises_checkpoint_error(
    checkpoint, tmp_path
):
    _run(checkpoint, tmp_path, os.environ.get("HYPOTHESIS_PROFILE", "default"), 300)


@pytest.mark.slow
def test_damaged_checkpoint_thorough(checkpoint, tmp_path):
    _run(checkpoint, tmp_path, "thorough", 5000)


def test_undamaged_checkpoint_loads(checkpoint, tmp_path):
    saved, like, data, _ = checkpoint
    _check(tmp_path / "same.ckpt", saved, like, data, len(data), [])
    # every structure region was found (members: metadata + leaves)
    leaves = len(jax.tree_util.tree_leaves(saved))
    assert len(checkpoint[3]) == 3 * (leaves + 1) + 1
