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
    if n < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError(
            f"invalid convolution arguments: n={n}, kernel_size={kernel_size}, "
            f"stride={stride}, padding={padding}, dilation={dilation}"
        )
    out = (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"kernel of effective size {dilation * (kernel_size - 1) + 1} does not fit "
            f"in an input of size {n} padded by {padding} on each side"
        )
    return out


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
    s = kernel_size if stride is None else stride
    if n < 1 or kernel_size < 1 or s < 1 or dilation < 1 or padding < 0:
        raise ValueError(
            f"invalid pooling arguments: n={n}, kernel_size={kernel_size}, "
            f"stride={s}, padding={padding}, dilation={dilation}"
        )
    if 2 * padding > kernel_size:
        raise ValueError(f"padding={padding} is more than half of kernel_size={kernel_size}")
    span = n + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    # PyTorch's rule: the last window must start inside the input or its left padding
    if ceil_mode and (out - 1) * s >= n + padding:
        out -= 1
    if out < 1:
        raise ValueError(f"pooling window of size {kernel_size} gives no output for an input of size {n}")
    return out


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding p with conv_output_size(n, kernel_size, 1, p, dilation) == n: p = dilation*(kernel_size-1)/2.

    Raises ValueError when dilation*(kernel_size-1) is odd (no symmetric padding keeps the
    size) or when kernel_size or dilation is not positive.
    """
    if kernel_size < 1 or dilation < 1:
        raise ValueError(f"invalid kernel_size={kernel_size} or dilation={dilation}")
    reach = dilation * (kernel_size - 1)
    if reach % 2:
        raise ValueError(
            f"no symmetric padding keeps the size for kernel_size={kernel_size}, dilation={dilation}"
        )
    return reach // 2


def conv2d_params(
    in_channels: int, out_channels: int, kernel_size: IntPair, bias: bool = True, groups: int = 1
) -> int:
    """Parameters of nn.Conv2d: out_channels * (in_channels / groups) * KH * KW, plus out_channels if bias.

    kernel_size is an int or an (KH, KW) pair. Raises ValueError for a non-positive count
    or when groups does not divide both in_channels and out_channels.
    """
    kh, kw = _pair(kernel_size)
    if min(in_channels, out_channels, kh, kw, groups) < 1:
        raise ValueError("channels, kernel size and groups must be positive")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
    weights = out_channels * (in_channels // groups) * kh * kw
    return weights + (out_channels if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of nn.Linear: in_features * out_features, plus out_features if bias."""
    if in_features < 1 or out_features < 1:
        raise ValueError("in_features and out_features must be positive")
    return in_features * out_features + (out_features if bias else 0)


def trace_shapes(input_shape: tuple[int, ...], layers: list[dict[str, Any]]) -> list[tuple[int, ...]]:
    """Shape after each layer, starting from input_shape = (C, H, W) (no batch axis).

    Layers: {"type": "conv", "out_channels", "kernel_size", "stride"=1, "padding"=0},
    {"type": "maxpool" | "avgpool", "kernel_size", "stride"=kernel_size, "padding"=0},
    {"type": "relu"}, {"type": "flatten"} -> (C*H*W,), {"type": "linear", "out_features"}.
    kernel_size, stride and padding may be ints or (h, w) pairs. Raises ValueError for a
    layer that cannot take the shape before it (linear on an unflattened shape, conv or
    pool on a flat one, an output size below 1, an unknown type).
    """
    shapes = []
    shape = tuple(input_shape)
    for layer in layers:
        shape = _layer_output_shape(shape, layer)
        shapes.append(shape)
    return shapes


def count_params(input_shape: tuple[int, ...], layers: list[dict[str, Any]]) -> int:
    """Sum of conv2d_params and linear_params (with bias) over the layers; relu, pooling and flatten have none.

    Same input_shape and layers as trace_shapes; a layer's in_channels or in_features come
    from the shape before it. Raises ValueError where trace_shapes does.
    """
    inputs = [tuple(input_shape)] + trace_shapes(input_shape, layers)[:-1]
    return sum(_layer_params(shape, layer) for shape, layer in zip(inputs, layers))


def _layer_output_shape(shape: tuple[int, ...], layer: dict[str, Any]) -> tuple[int, ...]:
    kind = layer.get("type")
    if kind == "relu":
        return shape
    if kind == "flatten":
        return (math.prod(shape),)
    if kind == "linear":
        if len(shape) != 1:
            raise ValueError(f"a linear layer needs a flat input, got shape {shape}: flatten first")
        return (layer["out_features"],)
    if kind not in ("conv", "maxpool", "avgpool"):
        raise ValueError(f"unknown layer type {kind!r}")
    if len(shape) != 3:
        raise ValueError(f"a {kind} layer needs a (C, H, W) input, got shape {shape}")
    c, h, w = shape
    kh, kw = _pair(layer["kernel_size"])
    if kind == "conv":
        sh, sw = _pair(layer.get("stride", 1))
        ph, pw = _pair(layer.get("padding", 0))
        return (layer["out_channels"], conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw))
    sh, sw = _pair(layer.get("stride", layer["kernel_size"]))
    ph, pw = _pair(layer.get("padding", 0))
    return (c, pool_output_size(h, kh, sh, ph), pool_output_size(w, kw, sw, pw))


def _layer_params(shape: tuple[int, ...], layer: dict[str, Any]) -> int:
    if layer["type"] == "conv":
        return conv2d_params(shape[0], layer["out_channels"], layer["kernel_size"])
    if layer["type"] == "linear":
        return linear_params(shape[0], layer["out_features"])
    return 0


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
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but the filters expect {w.shape[1]}")
    xpad = _pad(x, _pair(padding))
    out = _correlate(xpad, w, _pair(stride), _pair(dilation))
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


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
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    kh, kw = w.shape[2:]
    xpad = _pad(x, (ph, pw))
    # db: every output position adds its bias once
    db = dout.sum(axis=(0, 2, 3))
    # dw: correlate the padded input with dout, summing over n, i, j for every tap (u, v)
    windows = _windows(xpad, (kh, kw), (sh, sw), (1, 1))
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))
    # dx: spread dout with (s - 1) zeros between entries, pad by KH-1, KW-1, correlate with the flipped kernel
    n, f, oh, ow = dout.shape
    spread = np.zeros((n, f, (oh - 1) * sh + 1, (ow - 1) * sw + 1), dtype=dout.dtype)
    spread[:, :, ::sh, ::sw] = dout
    full = _pad(spread, (kh - 1, kw - 1))
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dxpad = _correlate(full, flipped, (1, 1), (1, 1))
    # rows and columns past the last window never touched the output
    hp, wp = xpad.shape[2:]
    dxpad = np.pad(dxpad, ((0, 0), (0, 0), (0, hp - dxpad.shape[2]), (0, wp - dxpad.shape[3])))
    dx = dxpad[:, :, ph : hp - ph, pw : wp - pw]
    return dx, dw, db


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
    k, s, p = _pool_args(kernel_size, stride, padding)
    xpad = _pad(x, p, value=-np.inf)
    return _windows(xpad, k, s, (1, 1)).max(axis=(-2, -1))


def max_pool2d_backward(
    dout: np.ndarray, x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None
) -> np.ndarray:
    """dx[n,c,h,w] = sum of dout[n,c,i,j] over the windows (i, j) whose first maximum is x[n,c,h,w].

    x (N, C, H, W) is the forward input (no padding), dout (N, C, OH, OW). Each window sends
    its whole gradient to one element: the first maximum in row-major order (as PyTorch
    does on ties); overlapping windows (stride < kernel) add up.
    """
    (kh, kw), (sh, sw), _ = _pool_args(kernel_size, stride, 0)
    n, c, h, w = x.shape
    windows = _windows(x, (kh, kw), (sh, sw), (1, 1))
    oh, ow = windows.shape[2:4]
    if dout.shape != (n, c, oh, ow):
        raise ValueError(f"dout has shape {dout.shape}, expected {(n, c, oh, ow)}")
    # argmax over the flattened window returns the first maximum in row-major order
    arg = windows.reshape(n, c, oh, ow, kh * kw).argmax(axis=-1)
    rows = np.arange(oh).reshape(oh, 1) * sh + arg // kw
    cols = np.arange(ow).reshape(1, ow) * sw + arg % kw
    planes = np.arange(n * c).reshape(n, c, 1, 1)
    # scatter-add each window's gradient to its winner
    flat = (planes * h + rows) * w + cols
    dx = np.bincount(flat.ravel(), weights=dout.ravel(), minlength=n * c * h * w)
    return dx.reshape(x.shape).astype(np.result_type(dout, x), copy=False)


def avg_pool2d_forward(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> np.ndarray:
    """out[n,c,i,j] = (1 / (KH*KW)) * sum_{u,v} xpad[n,c,i*s+u, j*s+v], zero padding counted in the average.

    x (N, C, H, W) -> (N, C, OH, OW) with OH = pool_output_size(H, KH, s, p); stride
    defaults to kernel_size (PyTorch's count_include_pad=True). Raises ValueError for
    padding above half the kernel.
    """
    k, s, p = _pool_args(kernel_size, stride, padding)
    xpad = _pad(x, p)
    return _windows(xpad, k, s, (1, 1)).mean(axis=(-2, -1))


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _pair(v: IntPair) -> tuple[int, int]:
    return (v, v) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _pad(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(
    xpad: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> np.ndarray:
    """View (N, C, OH, OW, KH, KW) of every (dilated, strided) window of xpad; no copy."""
    (kh, kw), (sh, sw), (dil_h, dil_w) = kernel, stride, dilation
    reach_h, reach_w = dil_h * (kh - 1) + 1, dil_w * (kw - 1) + 1
    if min(kh, kw, sh, sw, dil_h, dil_w) < 1:
        raise ValueError("kernel size, stride and dilation must be positive")
    if reach_h > xpad.shape[2] or reach_w > xpad.shape[3]:
        raise ValueError(f"a {reach_h}x{reach_w} window does not fit in a {xpad.shape[2]}x{xpad.shape[3]} input")
    view = sliding_window_view(xpad, (reach_h, reach_w), axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dil_h, ::dil_w]


def _correlate(xpad: np.ndarray, w: np.ndarray, stride: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """im2col then one matrix product: (N, C, OH, OW, KH, KW) . (F, C, KH, KW) -> (N, F, OH, OW)."""
    windows = _windows(xpad, w.shape[2:], stride, dilation)
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def _pool_args(
    kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    k = _pair(kernel_size)
    s = k if stride is None else _pair(stride)
    p = _pair(padding)
    if min(k + s) < 1 or min(p) < 0 or 2 * p[0] > k[0] or 2 * p[1] > k[1]:
        raise ValueError(f"invalid pooling arguments: kernel_size={k}, stride={s}, padding={p} (padding <= kernel/2)")
    return k, s, p
