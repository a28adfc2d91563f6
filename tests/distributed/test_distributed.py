"""pax.distributed in one process: flags, argument checks, process_rows."""

import argparse

import jax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import pax


def parse(*argv):
    return pax.distributed.add_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_one_process_is_left_alone():
    assert pax.distributed.initialize_from_args(parse()) is False
    assert not jax.distributed.is_initialized()


def test_several_processes_need_a_coordinator():
    with pytest.raises(ValueError, match="--num-processes 2 needs --coordinator"):
        pax.distributed.initialize_from_args(parse("--num-processes", "2"))


@pytest.mark.parametrize(
    "args, match",
    [
        (("127.0.0.1:1", 0, 0), "`num_processes` must be >= 1"),
        (("127.0.0.1:1", 2, 2), r"`process_id` must be an int in \[0, 2\)"),
        (("nohost", 2, 0), "`coordinator` must be 'host:port'"),
    ],
)
def test_bad_arguments_are_refused_before_jax_is_called(args, match):
    with pytest.raises(ValueError, match=match):
        pax.distributed.initialize(*args)


def test_process_rows_of_a_single_process_is_the_whole_batch():
    mesh = pax.sharding.make_mesh((1,), ("data",))
    rows = pax.distributed.process_rows(NamedSharding(mesh, P("data")), 6)
    assert rows == slice(0, 6)
    with pytest.raises(TypeError, match="`global_rows` must be an int"):
        pax.distributed.process_rows(NamedSharding(mesh, P("data")), 6.0)
