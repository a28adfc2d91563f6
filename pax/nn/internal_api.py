"""``pax.nn.internal_api``: the supported seam between ``pax.nn`` and the
packages built on it, ``pax.hk`` first.

``pax.hk`` may import only public names: ``pax``, ``pax.nn``, ``pax.nets``,
``pax.initializers`` (each module's ``__all__``) and this module.
Everything else in ``pax.nn`` (its ``_private`` modules) may change without
notice; what another package needs from them is re-exported here, with a
docstring, shapes and an example, and kept stable for those packages.
``tests/hk/test_public_seams.py`` holds ``pax.hk`` to this rule.

Not part of the user-facing API (``pax.nn.__all__``): a user writing layers
may read it, but should prefer the public names.

* :func:`conv_dimension_numbers`: ``jax.lax`` dimension numbers of an N-d
  (transposed) convolution, Haiku's layout.
* :func:`bias_shape`: the shape of Haiku's ``Bias`` parameter.

(The ``data_format`` parser is public: :func:`pax.nn.channel_index`.)

>>> from pax.nn import internal_api
>>> internal_api.bias_shape((2, 3, 4), [-1])
(4,)
>>> internal_api.conv_dimension_numbers(1, True, False).lhs_spec
(0, 2, 1)
"""

from ._conv import dimension_numbers as conv_dimension_numbers
from ._linear import bias_shape as bias_shape

__all__ = ["bias_shape", "conv_dimension_numbers"]
