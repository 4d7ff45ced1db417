"""Lab 3: convolution and pooling in NumPy (NCHW layout).

A convolutional layer slides a small filter over an image. Every filter spans
all input channels, so one filter produces one output channel (a feature map),
and F filters produce F channels. Stride, padding and dilation decide where the
windows sit; pooling slides a parameter-free window that takes a maximum or an
average. Everything here follows PyTorch exactly (``torch.nn.functional.conv2d``,
``max_pool2d``, ``avg_pool2d``, ``torch.nn.Conv2d``, ``torch.nn.Linear``), so
PyTorch can check every answer.

Layouts: images are (N, C, H, W), filters are (F, C, KH, KW), biases are (F,).
"Convolution" in deep learning is cross-correlation: the kernel is not flipped,

    out[n, f, i, j] = b[f] + sum_{c, u, v} w[f, c, u, v] * xpad[n, c, i*s + u*d, j*s + v*d].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

IntPair = int | tuple[int, int]


# ---------------------------------------------------------------------------
# Sizes and counts
# ---------------------------------------------------------------------------


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution: floor((n + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1.

    Raises ValueError for a non-positive n, kernel_size, stride or dilation, a negative
    padding, or when the dilated kernel does not fit in the padded input (output < 1).
    """
    raise NotImplementedError("Task lab3.conv_output_size: not implemented yet")


def pool_output_size(
    n: int,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a pooling window: floor (or ceil) of (n + 2p - d(k-1) - 1) / s, plus 1.

    stride defaults to kernel_size. With ceil_mode the division rounds up, but a last
    window that would start in the right padding is dropped, i.e. keep the last window
    only if (out - 1) * s < n + p. Raises ValueError where PyTorch refuses: a non-positive
    n, kernel_size, stride or dilation, padding < 0 or padding > kernel_size / 2, output < 1.
    """
    raise NotImplementedError("Task lab3.pool_output_size: not implemented yet")


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding p with conv_output_size(n, kernel_size, 1, p, dilation) == n: p = dilation*(kernel_size-1)/2.

    Raises ValueError when dilation*(kernel_size-1) is odd (no symmetric padding keeps the
    size) or when kernel_size or dilation is not positive.
    """
    raise NotImplementedError("Task lab3.same_padding: not implemented yet")


def conv2d_params(
    in_channels: int, out_channels: int, kernel_size: IntPair, bias: bool = True, groups: int = 1
) -> int:
    """Parameters of nn.Conv2d: out_channels * (in_channels / groups) * KH * KW, plus out_channels if bias.

    kernel_size is an int or an (KH, KW) pair. Raises ValueError for a non-positive count
    or when groups does not divide both in_channels and out_channels.
    """
    raise NotImplementedError("Task lab3.conv2d_params: not implemented yet")


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of nn.Linear: in_features * out_features, plus out_features if bias."""
    raise NotImplementedError("Task lab3.linear_params: not implemented yet")


def trace_shapes(input_shape: tuple[int, ...], layers: list[dict[str, Any]]) -> list[tuple[int, ...]]:
    """Shape after each layer, starting from input_shape = (C, H, W) (no batch axis).

    Layers: {"type": "conv", "out_channels", "kernel_size", "stride"=1, "padding"=0},
    {"type": "maxpool" | "avgpool", "kernel_size", "stride"=kernel_size, "padding"=0},
    {"type": "relu"}, {"type": "flatten"} -> (C*H*W,), {"type": "linear", "out_features"}.
    kernel_size, stride and padding may be ints or (h, w) pairs. Raises ValueError for a
    layer that cannot take the shape before it (linear on an unflattened shape, conv or
    pool on a flat one, an output size below 1, an unknown type).
    """
    raise NotImplementedError("Task lab3.trace_shapes: not implemented yet")


def count_params(input_shape: tuple[int, ...], layers: list[dict[str, Any]]) -> int:
    """Sum of conv2d_params and linear_params (with bias) over the layers; relu, pooling and flatten have none.

    Same input_shape and layers as trace_shapes; a layer's in_channels or in_features come
    from the shape before it. Raises ValueError where trace_shapes does.
    """
    raise NotImplementedError("Task lab3.count_params: not implemented yet")


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> np.ndarray:
    """Cross-correlation: out[n,f,i,j] = b[f] + sum_{c,u,v} w[f,c,u,v] * xpad[n,c,i*s+u*d, j*s+v*d].

    x (N, C, H, W), w (F, C, KH, KW), b (F,) or None; xpad is x with `padding` zeros on
    every side. Returns (N, F, OH, OW) with OH = conv_output_size(H, KH, s, p, d). The
    kernel is not flipped (as in torch.nn.functional.conv2d). stride, padding and
    dilation are ints or (h, w) pairs.
    """
    raise NotImplementedError("Task lab3.conv2d_forward: not implemented yet")


def conv2d_backward(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: IntPair = 1, padding: IntPair = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of conv2d_forward (dilation 1) given dout = dL/dout: db[f] = sum_{n,i,j} dout[n,f,i,j].

    dw[f,c,u,v] = sum_{n,i,j} dout[n,f,i,j] * xpad[n,c,i*s+u, j*s+v] (correlate input and dout);
    dx = full correlation of dout (s-1 zeros between entries) with the flipped kernel,
    with the padding cropped off. dout (N, F, OH, OW), x (N, C, H, W), w (F, C, KH, KW);
    returns dx shaped like x, dw like w, db (F,). Input rows or columns that no window
    reached (H + 2p - KH not a multiple of the stride) get zero gradient.
    """
    raise NotImplementedError("Task lab3.conv2d_backward: not implemented yet")


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


def max_pool2d_forward(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> np.ndarray:
    """out[n,c,i,j] = max_{u,v} xpad[n,c,i*s+u, j*s+v], where the padding counts as -inf.

    x (N, C, H, W) -> (N, C, OH, OW) with OH = pool_output_size(H, KH, s, p); stride
    defaults to kernel_size; kernel_size, stride, padding are ints or (h, w) pairs.
    Raises ValueError for padding above half the kernel (PyTorch refuses it).
    """
    raise NotImplementedError("Task lab3.max_pool2d_forward: not implemented yet")


def max_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None
) -> np.ndarray:
    """dx[n,c,h,w] = sum of dout[n,c,i,j] over the windows (i, j) whose first maximum is x[n,c,h,w].

    x (N, C, H, W) is the forward input (no padding), dout (N, C, OH, OW). Each window sends
    its whole gradient to one element: the first maximum in row-major order (as PyTorch
    does on ties); overlapping windows (stride < kernel) add up.
    """
    raise NotImplementedError("Task lab3.max_pool2d_backward: not implemented yet")


def avg_pool2d_forward(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> np.ndarray:
    """out[n,c,i,j] = (1 / (KH*KW)) * sum_{u,v} xpad[n,c,i*s+u, j*s+v], zero padding counted in the average.

    x (N, C, H, W) -> (N, C, OH, OW) with OH = pool_output_size(H, KH, s, p); stride
    defaults to kernel_size (PyTorch's count_include_pad=True). Raises ValueError for
    padding above half the kernel.
    """
    raise NotImplementedError("Task lab3.avg_pool2d_forward: not implemented yet")
