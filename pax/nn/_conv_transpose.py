"""Transposed convolutions: ``ConvNDTranspose`` and ``Conv1D/2D/3DTranspose``.

``Conv1DTranspose`` etc. are ``ConvNDTranspose`` with ``num_spatial_dims``
fixed. Weight layout ``[*kernel, out, in]``, math, padding rules and the
default initializer's fan-in are Haiku's.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from ..initializers import Initializer
from ._conv import _ConvBase, dimension_numbers
from ._pad import resolve_padding
from ._utils import positive_int, replicate, who


def transpose_padding(
    input_size: int, output_size: int, kernel: int, stride: int, padding: str, owner
) -> tuple[int, int]:
    """Explicit ``conv_transpose`` padding that yields ``output_size``.

    Haiku's rule (TensorFlow's ``conv2d_transpose``): the full transposed
    output, ``(input_size - 1) * stride + kernel`` long, is cropped to
    ``output_size`` starting at 0 (``"VALID"``) or at half the excess
    (``"SAME"``, the odd element cropped at the end).
    """
    if padding == "VALID":
        expected = (output_size - kernel) // stride + 1
        crop_before = 0
    else:
        expected = -(-output_size // stride)
        crop_before = max(0, (input_size - 1) * stride + kernel - output_size) // 2
    if input_size != expected:
        raise ValueError(
            f"{owner}: an input of spatial size {input_size} cannot give "
            f"`output_shape` size {output_size} with kernel {kernel}, stride "
            f"{stride} and padding {padding!r}; expected input size {expected}"
        )
    low = kernel - 1 - crop_before
    high = output_size + kernel - 2 - (input_size - 1) * stride - low
    return (low, high)


class ConvNDTranspose(_ConvBase):
    """N-d transposed convolution (deconvolution), Haiku's ``ConvNDTranspose``.

    The input is dilated by ``stride`` (``stride - 1`` zeros between
    elements), padded, and cross-correlated with the kernel (not flipped, as in
    Haiku: ``jax.lax.conv_transpose`` with ``transpose_kernel=False``).

    Args:
      num_spatial_dims: number of spatial dimensions ``n`` (>= 1).
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: kernel size, an int or a sequence of ``n`` ints.
      stride: upsampling factor, an int or ``n`` ints (default 1).
      output_shape: optional spatial output shape (an int or ``n`` ints); the
        padding is then chosen to produce it (needs ``"SAME"``/``"VALID"``).
      padding: ``"SAME"`` (default) or ``"VALID"`` (any case), or explicit
        ``(low, high)`` pairs (one for all dims, or ``n``) applied to the
        dilated input as ``jax.lax.conv_transpose`` does.
      with_bias: add a bias (default True). Without one, ``bias`` is None.
      w_init: initializer for ``weight`` ``[*kernel_shape, O, C]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(prod(kernel_shape) * C))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"channels_last"`` (default), ``"channels_first"`` or
        any spelling :func:`pax.nn.channel_index` accepts: ``"NHWC"``,
        ``"NCHW"``, ``"N...C"``, ``"NC..."``...; one spelled letter by letter
        must have ``num_spatial_dims + 2`` letters.
      mask: optional array of the weight's shape, multiplied into the weight at
        every call (non-trainable state).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, *spatial, C]`` or ``[N, C, *spatial]`` (batch axis optional);
    output in the same layout with ``O`` channels and spatial size
    ``output_shape`` if given, else ``L * stride`` (``"SAME"``),
    ``L * stride + max(k - stride, 0)`` (``"VALID"``) or
    ``(L - 1) * stride + low + high - k + 2`` (explicit pairs).
    Trainable: ``weight``, ``bias``.

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> up = pax.ConvNDTranspose(2, 4, 3, kernel_shape=3, stride=2, rng_key=key)
    >>> up.weight.shape
    (3, 3, 3, 4)
    >>> up(jnp.ones((2, 5, 5, 4))).shape
    (2, 10, 10, 3)
    """

    def __init__(
        self,
        num_spatial_dims: int,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        output_shape: int | Sequence[int] | None = None,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "channels_last",
        mask: jax.Array | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        n = positive_int(num_spatial_dims, "num_spatial_dims", owner)
        self._setup(
            n, in_features, out_features, kernel_shape, stride, data_format, owner
        )
        if output_shape is not None:
            output_shape = replicate(output_shape, n, "output_shape", owner)
        self.output_shape = output_shape
        self.padding = resolve_padding(
            padding, self.kernel_shape, (1,) * n, owner, allow_fns=False
        )
        if output_shape is not None and not isinstance(self.padding, str):
            raise ValueError(
                f"{owner}: with `output_shape`, `padding` must be 'SAME' or 'VALID', "
                f"got {padding!r}"
            )
        shape = (*self.kernel_shape, self.out_features, self.in_features)
        fan_in = int(np.prod(self.kernel_shape)) * self.in_features
        self._init_params(
            shape, fan_in, with_bias, w_init, b_init, mask, rng_key, owner
        )

    def __call__(
        self, x: jax.Array, *, precision: jax.lax.Precision | None = None
    ) -> jax.Array:
        """``[N, *spatial, C] -> [N, *spatial', O]`` (or channels first)."""
        with jax.named_scope(f"pax.nn.{type(self).__name__}"):
            x, w, unbatched = self._prepare(x)
            padding = self.padding
            if self.output_shape is not None:
                sizes = x.shape[1:-1] if self.channels_last else x.shape[2:]
                padding = tuple(
                    transpose_padding(i, o, k, s, self.padding, who(self))
                    for i, o, k, s in zip(
                        sizes, self.output_shape, self.kernel_shape, self.stride
                    )
                )
            y = jax.lax.conv_transpose(
                x,
                w,
                strides=self.stride,
                padding=padding,
                dimension_numbers=dimension_numbers(
                    self.num_spatial_dims, self.channels_last, transpose=True
                ),
                transpose_kernel=False,
                precision=precision,
            )
            return self._finish(y, unbatched)


class Conv1DTranspose(ConvNDTranspose):
    """1-d transposed convolution: :class:`ConvNDTranspose` with ``num_spatial_dims=1``.

    Args:
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: kernel width ``k``, an int or a 1-sequence.
      stride: upsampling factor, an int or a 1-sequence (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, or explicit ``(low, high)``
        pairs (one for all dims, or 1), see :class:`ConvNDTranspose`.
      with_bias: add a bias (default True); otherwise ``bias`` is None.
      w_init: initializer for ``weight`` ``[k, O, C]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(k * C))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"NWC"`` (default) or ``"NCW"``; ``"channels_last"``
        and ``"channels_first"`` also work.
      mask: optional array of the weight's shape, multiplied into the weight.
      output_shape: keyword-only; optional spatial output shape (an int or
        a 1-sequence); needs ``"SAME"`` or ``"VALID"`` padding.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, W, C]`` (``"NWC"``) or ``[N, C, W]`` (``"NCW"``),
    batch axis optional; output in the same layout with ``O`` channels and
    spatial size ``L * stride`` for ``"SAME"`` (``output_shape`` if given; see
    :class:`ConvNDTranspose` for the others).

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> up = pax.Conv1DTranspose(4, 3, kernel_shape=3, stride=2, rng_key=key)
    >>> up(jnp.ones((2, 8, 4))).shape
    (2, 16, 3)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NWC",
        mask: jax.Array | None = None,
        *,
        output_shape: int | Sequence[int] | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            1,
            in_features,
            out_features,
            kernel_shape,
            stride,
            output_shape,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            rng_key=rng_key,
            name=name,
        )


class Conv2DTranspose(ConvNDTranspose):
    """2-d transposed convolution: :class:`ConvNDTranspose` with ``num_spatial_dims=2``.

    Args:
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: ``(kh, kw)``, or an int for both.
      stride: upsampling factor, an int or 2 ints (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, or explicit ``(low, high)``
        pairs (one for all dims, or 2), see :class:`ConvNDTranspose`.
      with_bias: add a bias (default True); otherwise ``bias`` is None.
      w_init: initializer for ``weight`` ``[kh, kw, O, C]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(kh * kw * C))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``; ``"channels_last"``
        and ``"channels_first"`` also work.
      mask: optional array of the weight's shape, multiplied into the weight.
      output_shape: keyword-only; optional spatial output shape (an int or
        2 ints); needs ``"SAME"`` or ``"VALID"`` padding.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]`` (``"NHWC"``) or ``[N, C, H, W]`` (``"NCHW"``),
    batch axis optional; output in the same layout with ``O`` channels and
    spatial size ``L * stride`` for ``"SAME"`` (``output_shape`` if given; see
    :class:`ConvNDTranspose` for the others).

    >>> import jax, jax.numpy as jnp, pax
    >>> up = pax.Conv2DTranspose(
    ...     4, 3, kernel_shape=3, stride=2, output_shape=(9, 9),
    ...     rng_key=jax.random.PRNGKey(0),
    ... )
    >>> up.weight.shape
    (3, 3, 3, 4)
    >>> up(jnp.ones((2, 5, 5, 4))).shape
    (2, 9, 9, 3)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NHWC",
        mask: jax.Array | None = None,
        *,
        output_shape: int | Sequence[int] | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            2,
            in_features,
            out_features,
            kernel_shape,
            stride,
            output_shape,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            rng_key=rng_key,
            name=name,
        )


class Conv3DTranspose(ConvNDTranspose):
    """3-d transposed convolution: :class:`ConvNDTranspose` with ``num_spatial_dims=3``.

    Args:
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: ``(kd, kh, kw)``, or an int for all three.
      stride: upsampling factor, an int or 3 ints (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, or explicit ``(low, high)``
        pairs (one for all dims, or 3), see :class:`ConvNDTranspose`.
      with_bias: add a bias (default True); otherwise ``bias`` is None.
      w_init: initializer for ``weight`` ``[kd, kh, kw, O, C]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(kd * kh * kw * C))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``; ``"channels_last"``
        and ``"channels_first"`` also work.
      mask: optional array of the weight's shape, multiplied into the weight.
      output_shape: keyword-only; optional spatial output shape (an int or
        3 ints); needs ``"SAME"`` or ``"VALID"`` padding.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, D, H, W, C]`` (``"NDHWC"``) or ``[N, C, D, H, W]`` (``"NCDHW"``),
    batch axis optional; output in the same layout with ``O`` channels and
    spatial size ``L * stride`` for ``"SAME"`` (``output_shape`` if given; see
    :class:`ConvNDTranspose` for the others).

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> up = pax.Conv3DTranspose(4, 3, kernel_shape=2, stride=2, rng_key=key)
    >>> up(jnp.ones((1, 3, 3, 3, 4))).shape
    (1, 6, 6, 6, 3)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NDHWC",
        mask: jax.Array | None = None,
        *,
        output_shape: int | Sequence[int] | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            3,
            in_features,
            out_features,
            kernel_shape,
            stride,
            output_shape,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            rng_key=rng_key,
            name=name,
        )
