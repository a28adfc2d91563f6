"""``pax.sharding``: modules, optimizer state and batches on a device mesh.

Sharding is described by rules, ``(regular expression, PartitionSpec)``
pairs matched against each leaf's key path (the keys of ``state_dict()`` and
of checkpoints), and applied with JAX's own ``jax.sharding`` engine:

* :func:`make_mesh`: a device mesh for them;
* :func:`partition_specs`: a tree of ``PartitionSpec`` s from the rules;
* :func:`named_shardings`: the same as ``NamedSharding`` s, for ``jax.jit``;
* :func:`shard`: ``jax.device_put`` a module, optimizer or batch on a mesh;
* :func:`init`: build a module with its arrays born sharded;
* :func:`fsdp_rules`, :func:`transformer_rules`: rule sets that ship.

A rule set is a sequence of ``(pattern, spec)`` pairs and/or callables
``(path, leaf, mesh) -> PartitionSpec | None``; the first rule that matches a
leaf wins (patterns use ``re.search``). Scalars, rng keys and unmatched
integer leaves are replicated; other unmatched leaves are an error unless a
``default`` spec is given.

Meshes: :func:`make_mesh` is ``jax.make_mesh`` with ``AxisType.Auto`` axes
(JAX's automatic partitioner, which PAX layers rely on; ``jax.make_mesh``
defaults to ``Explicit`` axes, which :func:`shard` and :func:`init` refuse).
"""

from ._rules import fsdp_rules as fsdp_rules
from ._rules import transformer_rules as transformer_rules
from ._specs import Rule as Rule
from ._specs import Rules as Rules
from ._specs import init as init
from ._specs import make_mesh as make_mesh
from ._specs import named_shardings as named_shardings
from ._specs import partition_specs as partition_specs
from ._specs import shard as shard

__all__ = [
    "Rule",
    "Rules",
    "fsdp_rules",
    "init",
    "make_mesh",
    "named_shardings",
    "partition_specs",
    "shard",
    "transformer_rules",
]
