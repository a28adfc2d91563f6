"""``hk.nets``: Haiku's networks, built from ``pax.hk`` layers (which compute
with ``pax.nn``). So far: ``MLP``; ResNets, MobileNetV1 and the vector
quantizers are still to come (use ``pax.nets`` natively meanwhile)."""

from ._mlp import MLP as MLP

__all__ = ["MLP"]
