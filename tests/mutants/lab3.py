"""Lab 3 mutants: convolution and pooling, as students write them.

Each ``@mistake`` is a bug seen in real submissions; ``@alternative`` is a correct
implementation that takes a different road from the reference (explicit loops over
output positions or kernel taps, einsum instead of tensordot, counting window starts
instead of the closed formula). docs/lab3-notes.md lists the symptom that gives each
mistake away and the inputs that expose it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tests.mutants import alternative, mistake

# ----------------------------------------------------------------------------- conv_output_size


@mistake("conv_output_size", expect="conv_output_size.matches_round_instead_floor")
def conv_output_size_round(n, kernel_size, stride=1, padding=0, dilation=1):
    if n < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError("invalid arguments")
    out = round((n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1  # mistake: round, not floor
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@mistake("conv_output_size", expect="conv_output_size.matches_ceil_instead_floor")
def conv_output_size_ceil(n, kernel_size, stride=1, padding=0, dilation=1):
    if n < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError("invalid arguments")
    out = math.ceil((n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1  # mistake: ceil, not floor
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@mistake("conv_output_size", expect="conv_output_size.dilation_missing_dilated_kernel")
def conv_output_size_forgets_dilation(n, kernel_size, stride=1, padding=0, dilation=1):
    if n < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError("invalid arguments")
    out = (n + 2 * padding - kernel_size) // stride + 1  # mistake: dilation missing: reach is dilation * (k - 1) + 1
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@mistake("conv_output_size", expect="conv_output_size.padding_counted_once_added")
def conv_output_size_padding_once(n, kernel_size, stride=1, padding=0, dilation=1):
    if n < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError("invalid arguments")
    out = (n + padding - dilation * (kernel_size - 1) - 1) // stride + 1  # mistake: padding counted once, not twice
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@mistake("conv_output_size", expect="check:raises ValueError for invalid arguments")
def conv_output_size_never_raises(n, kernel_size, stride=1, padding=0, dilation=1):
    # mistake: no ValueError for invalid arguments or an output below 1
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


@alternative("conv_output_size")
def conv_output_size_count_window_starts(n, kernel_size, stride=1, padding=0, dilation=1):
    if min(n, kernel_size, stride, dilation) < 1 or padding < 0:
        raise ValueError("sizes, stride and dilation must be positive, padding non-negative")
    reach = dilation * (kernel_size - 1) + 1
    starts = range(0, n + 2 * padding - reach + 1, stride)  # every position a window can start at
    if len(starts) == 0:
        raise ValueError("kernel does not fit")
    return len(starts)


# ----------------------------------------------------------------------------- pool_output_size


@mistake("pool_output_size", expect="pool_output_size.stride_defaulted_1_pooling")
def pool_output_size_stride_defaults_to_one(n, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    if stride is None:
        stride = 1  # mistake: stride defaults to kernel_size, not 1
    if min(n, kernel_size, stride, dilation) < 1 or padding < 0 or 2 * padding > kernel_size:
        raise ValueError("invalid arguments")
    span = n + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@mistake("pool_output_size", expect="pool_output_size.ceil_mode_without_pytorch")
def pool_output_size_plain_ceil(n, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    stride = kernel_size if stride is None else stride
    if min(n, kernel_size, stride, dilation) < 1 or padding < 0 or 2 * padding > kernel_size:
        raise ValueError("invalid arguments")
    frac = (n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride
    out = (math.ceil(frac) if ceil_mode else math.floor(frac)) + 1
    # mistake: PyTorch's rule missing: drop a last window that starts in the right padding
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@mistake("pool_output_size", expect="check:reproduces the handout's worked examples")
def pool_output_size_ignores_ceil_mode(n, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    stride = kernel_size if stride is None else stride
    if min(n, kernel_size, stride, dilation) < 1 or padding < 0 or 2 * padding > kernel_size:
        raise ValueError("invalid arguments")
    out = (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1  # mistake: ceil_mode ignored
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@mistake("pool_output_size", expect="check:raises ValueError for invalid arguments")
def pool_output_size_any_padding(n, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    stride = kernel_size if stride is None else stride
    # mistake: no ValueError for padding above kernel_size / 2
    if min(n, kernel_size, stride, dilation) < 1 or padding < 0:
        raise ValueError("invalid arguments")
    span = n + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    if out < 1:
        raise ValueError("output smaller than 1")
    return out


@alternative("pool_output_size")
def pool_output_size_explicit_ceil(n, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    s = kernel_size if stride is None else stride
    if min(n, kernel_size, s, dilation) < 1 or padding < 0:
        raise ValueError("sizes, stride and dilation must be positive, padding non-negative")
    if padding > kernel_size / 2:
        raise ValueError("padding should be at most half of the kernel size")
    span = n + 2 * padding - (dilation * (kernel_size - 1) + 1)
    steps = -(-span // s) if ceil_mode else span // s
    last_start = steps * s - padding  # in input coordinates
    if ceil_mode and last_start >= n:
        steps -= 1
    if steps < 0:
        raise ValueError("pooling output would be empty")
    return steps + 1


# ----------------------------------------------------------------------------- same_padding


@mistake("same_padding", expect="check:raises ValueError for invalid arguments")
def same_padding_floors_even_kernels(kernel_size, dilation=1):
    if kernel_size < 1 or dilation < 1:
        raise ValueError("invalid arguments")
    # mistake: no ValueError when dilation * (kernel_size - 1) is odd; // floors it
    return dilation * (kernel_size - 1) // 2


@mistake("same_padding", expect="same_padding.dilation_missing_padding_cover")
def same_padding_forgets_dilation(kernel_size, dilation=1):
    if kernel_size < 1 or dilation < 1 or (kernel_size - 1) % 2:  # mistake: parity test forgets dilation
        raise ValueError("no same padding")
    return (kernel_size - 1) // 2  # mistake: dilation missing: dilation * (kernel_size - 1) // 2


@mistake("same_padding", expect="same_padding.padding_added_both_sides")
def same_padding_counted_once(kernel_size, dilation=1):
    if kernel_size < 1 or dilation < 1:
        raise ValueError("invalid arguments")
    return dilation * (kernel_size - 1)  # mistake: the whole reach; each side needs only half of it


@alternative("same_padding")
def same_padding_search(kernel_size, dilation=1):
    if kernel_size < 1 or dilation < 1:
        raise ValueError("kernel_size and dilation must be positive")
    reach = dilation * (kernel_size - 1) + 1
    for p in range(reach):
        if 2 * p + 1 == reach:  # n + 2p - reach + 1 == n
            return p
    raise ValueError("no symmetric padding keeps the size")


# ----------------------------------------------------------------------------- conv2d_params


@mistake("conv2d_params", expect="conv2d_params.bias_missing_conv_layer")
def conv2d_params_forgets_bias(in_channels, out_channels, kernel_size, bias=True, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return out_channels * (in_channels // groups) * kh * kw  # mistake: the bias (out_channels if bias) is never added


@mistake("conv2d_params", expect="conv2d_params.input_channels_missing_every")
def conv2d_params_forgets_in_channels(in_channels, out_channels, kernel_size, bias=True, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return out_channels * kh * kw + (out_channels if bias else 0)  # mistake: in_channels // groups factor missing


@mistake("conv2d_params", expect="conv2d_params.groups_divided_twice")
def conv2d_params_divides_by_groups_twice(in_channels, out_channels, kernel_size, bias=True, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    # mistake: out_channels divided by groups too
    return (out_channels // groups) * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


@mistake("conv2d_params", expect="conv2d_params.groups_ignored_each_filter")
def conv2d_params_ignores_groups(in_channels, out_channels, kernel_size, bias=True, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    # mistake: groups ignored: each filter spans in_channels // groups
    return out_channels * in_channels * kh * kw + (out_channels if bias else 0)


@mistake("conv2d_params", expect="check:reproduces the handout's worked examples")
def conv2d_params_square_kernel(in_channels, out_channels, kernel_size, bias=True, groups=1):
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]  # mistake: KH only, used as KW too
    return out_channels * (in_channels // groups) * k * k + (out_channels if bias else 0)


@alternative("conv2d_params")
def conv2d_params_per_group(in_channels, out_channels, kernel_size, bias=True, groups=1):
    if min(in_channels, out_channels, groups) < 1 or in_channels % groups or out_channels % groups:
        raise ValueError("groups must divide the channels")
    ks = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    per_group = (in_channels // groups) * (out_channels // groups) * math.prod(ks)
    return groups * per_group + out_channels * int(bias)


# ----------------------------------------------------------------------------- linear_params


@mistake("linear_params", expect="linear_params.bias_missing_linear_layer")
def linear_params_forgets_bias(in_features, out_features, bias=True):
    return in_features * out_features  # mistake: the bias (out_features if bias) is never added


@mistake("linear_params", expect="linear_params.one_bias_per_input")
def linear_params_bias_per_input(in_features, out_features, bias=True):
    return in_features * out_features + (in_features if bias else 0)  # mistake: one bias per input; it is per output


@alternative("linear_params")
def linear_params_augmented_matrix(in_features, out_features, bias=True):
    return (in_features + (1 if bias else 0)) * out_features  # bias as an extra input fixed at 1


# ----------------------------------------------------------------------------- trace_shapes


@mistake("trace_shapes", expect="check:reproduces the handout's worked examples")
def trace_shapes_flatten_last_conv(input_shape, layers):
    shapes, shape = [], tuple(input_shape)
    last_conv = shape
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
            if kind == "conv":
                last_conv = shape
        elif kind == "flatten":
            shape = (math.prod(last_conv),)  # mistake: size of the last conv's maps, not of the current shape
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
        shapes.append(shape)
    return shapes


@mistake("trace_shapes", expect="trace_shapes.pool_stride_defaulted_1")
def trace_shapes_pool_stride_one(input_shape, layers):
    shapes, shape = [], tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1)  # mistake: a pool's stride defaults to kernel_size, not 1
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
        shapes.append(shape)
    return shapes


@mistake("trace_shapes", expect="check:reproduces the handout's worked examples")
def trace_shapes_conv_keeps_channels(input_shape, layers):
    shapes, shape = [], tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (shape[0], h, w)  # mistake: a conv makes out_channels channels, not shape[0]
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
        shapes.append(shape)
    return shapes


@mistake("trace_shapes", expect="trace_shapes.padding_counted_once_conv")
def trace_shapes_padding_once(input_shape, layers):
    shapes, shape = [], tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            h, w = ((n + p - k) // s + 1 for n in shape[1:])  # mistake: padding counted once, not 2 * p
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
        shapes.append(shape)
    return shapes


@mistake("trace_shapes", expect="check:raises ValueError for invalid arguments")
def trace_shapes_never_raises(input_shape, layers):
    shapes, shape = [], tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            # mistake: no ValueError for a flat input, pool padding above k / 2 or an output below 1
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            c = layer["out_channels"] if kind == "conv" else shape[0]
            shape = (c, *((n + 2 * p - k) // s + 1 for n in shape[-2:]))
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            # mistake: no ValueError for a linear layer on an unflattened shape
            shape = (layer["out_features"],)
        # mistake: no ValueError for an unknown layer type
        shapes.append(shape)
    return shapes


@alternative("trace_shapes")
def trace_shapes_separate_axes(input_shape, layers):
    def out_len(n, k, s, p, pool):
        if pool and 2 * p > k:
            raise ValueError("pooling padding above half the kernel")
        starts = range(0, n + 2 * p - k + 1, s)  # every position a window can start at
        if len(starts) == 0:
            raise ValueError("window does not fit")
        return len(starts)

    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    flat, (c, h, w) = False, input_shape
    shapes = []
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if flat:
                raise ValueError(f"{kind} after flatten")
            pool = kind != "conv"
            kh, kw = pair(layer["kernel_size"])
            sh, sw = pair(layer.get("stride", layer["kernel_size"] if pool else 1))
            ph, pw = pair(layer.get("padding", 0))
            h, w = out_len(h, kh, sh, ph, pool), out_len(w, kw, sw, pw, pool)
            c = c if pool else layer["out_channels"]
        elif kind == "flatten":
            c = c if flat else c * h * w
            flat = True
        elif kind == "linear":
            if not flat:
                raise ValueError("linear layer before flatten")
            c = layer["out_features"]
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
        shapes.append((c,) if flat else (c, h, w))
    return shapes


# ----------------------------------------------------------------------------- count_params


@mistake("count_params", expect="count_params.biases_missing_every_conv")
def count_params_forgets_bias(input_shape, layers):
    total, shape = 0, tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            if kind == "conv":
                total += c * shape[0] * k * k  # mistake: the conv bias (+ c) is never added
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            total += shape[0] * layer["out_features"]  # mistake: the linear bias (+ out_features) is never added
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
    return total


@mistake("count_params", expect="check:reproduces the handout's worked examples")
def count_params_flatten_last_conv(input_shape, layers):
    total, shape = 0, tuple(input_shape)
    last_conv = shape
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            if kind == "conv":
                total += c * shape[0] * k * k + c
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
            if kind == "conv":
                last_conv = shape
        elif kind == "flatten":
            # mistake: last conv's maps, not the current shape (AlexNet: 13 x 13 x 256, as in the lecture notes' table)
            shape = (math.prod(last_conv),)
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            total += shape[0] * layer["out_features"] + layer["out_features"]
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
    return total


@mistake("count_params", expect="check:raises ValueError wherever trace_shapes does")
def count_params_flattens_silently(input_shape, layers):
    # a linear layer on a (C, H, W) shape is "helped" with an implicit flatten instead of raising
    total, shape = 0, tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            if kind == "conv":
                total += c * shape[0] * k * k + c
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            features = math.prod(shape)  # mistake: flattens silently; raise unless shape is flat
            total += features * layer["out_features"] + layer["out_features"]
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
    return total


@mistake("count_params", expect="check:reproduces the handout's worked examples")
def count_params_pool_has_weights(input_shape, layers):
    total, shape = 0, tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            if kind == "conv":
                total += c * shape[0] * k * k + c
            else:
                total += c * k * k  # mistake: pooling has no weights, not one k x k window per channel
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            total += shape[0] * layer["out_features"] + layer["out_features"]
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
    return total


@mistake("count_params", expect="count_params.every_conv_filter_given")
def count_params_image_channels_everywhere(input_shape, layers):
    total, shape = 0, tuple(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(shape) != 3:
                raise ValueError(f"{kind} needs a (C, H, W) input")
            k, p = layer["kernel_size"], layer.get("padding", 0)
            s = layer.get("stride", 1 if kind == "conv" else k)
            if kind != "conv" and 2 * p > k:
                raise ValueError("pooling padding above half the kernel")
            c = layer["out_channels"] if kind == "conv" else shape[0]
            if kind == "conv":
                total += c * input_shape[0] * k * k + c  # mistake: filters span shape[0], not the image's channels
            h, w = ((n + 2 * p - k) // s + 1 for n in shape[1:])
            if h < 1 or w < 1:
                raise ValueError("output smaller than 1")
            shape = (c, h, w)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "linear":
            if len(shape) != 1:
                raise ValueError("flatten before a linear layer")
            total += shape[0] * layer["out_features"] + layer["out_features"]
            shape = (layer["out_features"],)
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
    return total


@alternative("count_params")
def count_params_fan_in_plus_one(input_shape, layers):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    def out_len(n, k, s, p):
        out = (n + 2 * p - k) // s + 1
        if out < 1:
            raise ValueError("window does not fit")
        return out

    total, dims = 0, list(input_shape)
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool"):
            if len(dims) != 3:
                raise ValueError(f"{kind} on a flat input")
            kh, kw = pair(layer["kernel_size"])
            sh, sw = pair(layer.get("stride", 1 if kind == "conv" else layer["kernel_size"]))
            ph, pw = pair(layer.get("padding", 0))
            if kind != "conv" and (2 * ph > kh or 2 * pw > kw):
                raise ValueError("pooling padding above half the kernel")
            if kind == "conv":
                fan_in = dims[0] * kh * kw
                total += layer["out_channels"] * (fan_in + 1)  # each filter: fan_in weights and a bias
                dims[0] = layer["out_channels"]
            dims[1:] = [out_len(dims[1], kh, sh, ph), out_len(dims[2], kw, sw, pw)]
        elif kind == "flatten":
            dims = [math.prod(dims)]
        elif kind == "linear":
            if len(dims) != 1:
                raise ValueError("linear layer before flatten")
            total += layer["out_features"] * (dims[0] + 1)
            dims = [layer["out_features"]]
        elif kind != "relu":
            raise ValueError(f"unknown layer {kind!r}")
    return total


# ----------------------------------------------------------------------------- conv2d_forward


@mistake("conv2d_forward", expect="conv2d_forward.matches_true_convolution_kernel")
def conv2d_forward_flipped_kernel(x, w, b, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2).tolist() for a in (stride, padding, dilation))
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    flipped = w[:, :, ::-1, ::-1]  # mistake: kernel flipped (the textbook convolution); conv2d is cross-correlation
    out = np.einsum("nchwij,fcij->nfhw", win, flipped)
    return out if b is None else out + b[None, :, None, None]


@mistake("conv2d_forward", expect="conv2d_forward.bias_missing_add_b")
def conv2d_forward_ignores_bias(x, w, b, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2).tolist() for a in (stride, padding, dilation))
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    return np.einsum("nchwij,fcij->nfhw", win, w)  # mistake: the bias b is never added


@mistake("conv2d_forward", expect="conv2d_forward.stride_on_rows_only")
def conv2d_forward_stride_on_rows_only(x, w, b, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2).tolist() for a in (stride, padding, dilation))
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            # mistake: column start j, not j * sw: no stride along the columns
            patch = xp[:, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j : j + dw * (kw - 1) + 1 : dw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out if b is None else out + b[None, :, None, None]


@mistake("conv2d_forward", expect="conv2d_forward.dilation_ignored")
def conv2d_forward_ignores_dilation(x, w, b, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2).tolist() for a in (stride, padding, dilation))
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    # mistake: dilation ignored: (kh, kw) windows, not every dh-th / dw-th input
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, : oh * sh : sh, : ow * sw : sw]
    out = np.einsum("nchwij,fcij->nfhw", win, w)
    return out if b is None else out + b[None, :, None, None]


@mistake("conv2d_forward", expect="conv2d_forward.padding_on_one_side")
def conv2d_forward_pads_one_side(x, w, b, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2).tolist() for a in (stride, padding, dilation))
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, 0), (pw, 0)))  # mistake: zeros in front only; padding goes on both sides
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    out = np.einsum("nchwij,fcij->nfhw", win, w)
    return out if b is None else out + b[None, :, None, None]


@mistake("conv2d_forward", expect="conv2d_forward.input_channels_were_averaged")
def conv2d_forward_averages_channels(x, w, b, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2).tolist() for a in (stride, padding, dilation))
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    per_channel = np.einsum("nchwij,fcij->nfchw", win, w)
    out = per_channel.mean(axis=2)  # mistake: one feature map per channel, then averaged: sum over channels
    return out if b is None else out + b[None, :, None, None]


@mistake("conv2d_forward", expect="generic.dtype_changed")
def conv2d_forward_float64_buffer(x, w, b, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2).tolist() for a in (stride, padding, dilation))
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow))  # mistake: float64 buffer; use x.dtype
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out if b is None else out + b[None, :, None, None]


@alternative("conv2d_forward")
def conv2d_forward_loops_over_outputs(x, w, b, stride=1, padding=0, dilation=1):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + wd] = x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError("kernel larger than the padded input")
    out = np.zeros((n, f, oh, ow), dtype=np.result_type(x, w))
    w_mat = w.reshape(f, -1)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
            out[:, :, i, j] = patch.reshape(n, -1) @ w_mat.T
    if b is not None:
        out += b.reshape(1, f, 1, 1)
    return out


@alternative("conv2d_forward")
def conv2d_forward_sum_over_taps(x, w, b, stride=1, padding=0, dilation=1):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    f, c, kh, kw = w.shape
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError("kernel larger than the padded input")
    out = np.zeros((x.shape[0], f, oh, ow), dtype=np.result_type(x, w))
    # one shifted, strided view of the input per kernel tap (u, v)
    for u in range(kh):
        for v in range(kw):
            shifted = xp[:, :, u * dh : u * dh + sh * (oh - 1) + 1 : sh, v * dw : v * dw + sw * (ow - 1) + 1 : sw]
            out += np.einsum("nchw,fc->nfhw", shifted, w[:, :, u, v])
    if b is not None:
        out += b[:, None, None]
    return out


# ----------------------------------------------------------------------------- conv2d_backward


@mistake("conv2d_backward", expect="conv2d_backward.dw_came_out_c")
def conv2d_backward_dw_reshaped_not_transposed(dout, x, w, stride=1, padding=0):
    (sh, sw), (ph, pw) = np.broadcast_to(stride, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    # mistake: reshape, not transpose: (C, KH, KW, F) -> (F, C, KH, KW) scrambles dw
    dw = np.tensordot(win, dout, axes=([0, 2, 3], [0, 2, 3])).reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3))
    dcols = np.einsum("nfhw,fcij->nchwij", dout, w)
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += dcols[..., i, j]
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dw, db


@mistake("conv2d_backward", expect="conv2d_backward.dx_used_kernel_without")
def conv2d_backward_dx_kernel_not_flipped(dout, x, w, stride=1, padding=0):
    (sh, sw), (ph, pw) = np.broadcast_to(stride, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    dw = np.einsum("nfhw,nchwij->fcij", dout, win)
    db = dout.sum(axis=(0, 2, 3))
    # dx: full convolution of the stride-spread dout with the kernel
    spread = np.zeros((n, f, (oh - 1) * sh + 1, (ow - 1) * sw + 1), dtype=dout.dtype)
    spread[:, :, ::sh, ::sw] = dout
    full = np.pad(spread, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    # mistake: w not flipped: dx is a full correlation with the flipped kernel
    dxp = np.einsum("nfhwij,fcij->nchw", sliding_window_view(full, (kh, kw), axis=(2, 3)), w)
    dxp = np.pad(dxp, ((0, 0), (0, 0), (0, xp.shape[2] - dxp.shape[2]), (0, xp.shape[3] - dxp.shape[3])))
    return dxp[:, :, ph : ph + h, pw : pw + wd], dw, db


@mistake("conv2d_backward", expect="conv2d_backward.dw_flipped_dw_f")
def conv2d_backward_dw_flipped(dout, x, w, stride=1, padding=0):
    (sh, sw), (ph, pw) = np.broadcast_to(stride, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    # mistake: "convolution flips, so flip dw back", but the forward pass never flips
    dw = np.einsum("nfhw,nchwij->fcij", dout, win)[:, :, ::-1, ::-1]
    db = dout.sum(axis=(0, 2, 3))
    dcols = np.einsum("nfhw,fcij->nchwij", dout, w)
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += dcols[..., i, j]
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dw, db


@mistake("conv2d_backward", expect="conv2d_backward.db_mean_bias_added")
def conv2d_backward_db_mean(dout, x, w, stride=1, padding=0):
    (sh, sw), (ph, pw) = np.broadcast_to(stride, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    dw = np.einsum("nfhw,nchwij->fcij", dout, win)
    db = dout.mean(axis=(0, 2, 3))  # mistake: mean, not sum
    dcols = np.einsum("nfhw,fcij->nchwij", dout, w)
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += dcols[..., i, j]
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dw, db


@mistake("conv2d_backward", expect="conv2d_backward.db_uses_only_first")
def conv2d_backward_db_first_example_only(dout, x, w, stride=1, padding=0):
    (sh, sw), (ph, pw) = np.broadcast_to(stride, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    dw = np.einsum("nfhw,nchwij->fcij", dout, win)
    db = dout[0].sum(axis=(1, 2))  # mistake: first example only; sum over the batch too
    dcols = np.einsum("nfhw,fcij->nchwij", dout, w)
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += dcols[..., i, j]
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dw, db


@mistake("conv2d_backward", expect="check:matches torch.autograd through torch.nn.functional.conv2d (cpu, float64)")
def conv2d_backward_dx_without_spreading(dout, x, w, stride=1, padding=0):
    (sh, sw), (ph, pw) = np.broadcast_to(stride, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    dw = np.einsum("nfhw,nchwij->fcij", dout, win)
    db = dout.sum(axis=(0, 2, 3))
    # mistake: full convolution of dout as for stride 1: dout never spread by s - 1 zeros
    full = np.pad(dout, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    dxp = np.einsum("nfhwij,fcij->nchw", sliding_window_view(full, (kh, kw), axis=(2, 3)), w[:, :, ::-1, ::-1])
    dxp = np.pad(dxp, ((0, 0), (0, 0), (0, xp.shape[2] - dxp.shape[2]), (0, xp.shape[3] - dxp.shape[3])))
    return dxp[:, :, ph : ph + h, pw : pw + wd], dw, db


@mistake("conv2d_backward", expect="conv2d_backward.dx_not_cropped")
def conv2d_backward_dx_not_cropped(dout, x, w, stride=1, padding=0):
    (sh, sw), (ph, pw) = np.broadcast_to(stride, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    dw = np.einsum("nfhw,nchwij->fcij", dout, win)
    db = dout.sum(axis=(0, 2, 3))
    dcols = np.einsum("nfhw,fcij->nchwij", dout, w)
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += dcols[..., i, j]
    return dxp, dw, db  # mistake: dx is the gradient of the padded input; crop the padding off


@alternative("conv2d_backward")
def conv2d_backward_col2im(dout, x, w, stride=1, padding=0):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    # im2col: one row per output position, one column per (c, u, v)
    cols = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    dout_mat = dout.transpose(0, 2, 3, 1).reshape(n * oh * ow, f)
    dw = (dout_mat.T @ cols).reshape(w.shape)
    db = dout_mat.sum(axis=0)
    # col2im: add every column back onto the pixels it was read from
    dcols = (dout_mat @ w.reshape(f, -1)).reshape(n, oh, ow, c, kh, kw)
    dxp = np.zeros(xp.shape, dtype=np.result_type(dout, w))
    for u in range(kh):
        for v in range(kw):
            dxp[:, :, u : u + sh * (oh - 1) + 1 : sh, v : v + sw * (ow - 1) + 1 : sw] += dcols[..., u, v].transpose(0, 3, 1, 2)
    return dxp[:, :, ph : ph + h, pw : pw + wd], dw, db


@alternative("conv2d_backward")
def conv2d_backward_loops_over_outputs(dout, x, w, stride=1, padding=0):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            g = dout[:, :, i, j]  # (N, F)
            dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    db = dout.sum(axis=(0, 2, 3))
    return dxp[:, :, ph : ph + h, pw : pw + wd], dw, db


# ----------------------------------------------------------------------------- max_pool2d_forward


@mistake("max_pool2d_forward", expect="max_pool2d_forward.padding_filled_zeros_max")
def max_pool2d_forward_zero_padding(x, kernel_size, stride=None, padding=0):
    (kh, kw), (ph, pw) = np.broadcast_to(kernel_size, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError("padding should be at most half of the kernel size")
    # mistake: zero padding, as for convolution; max pooling pads with -inf
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].max(axis=(-2, -1))


@mistake("max_pool2d_forward", expect="max_pool2d_forward.stride_defaulted_1_when")
def max_pool2d_forward_stride_defaults_to_one(x, kernel_size, stride=None, padding=0):
    (kh, kw), (ph, pw) = np.broadcast_to(kernel_size, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    sh, sw = np.broadcast_to(stride or 1, 2).tolist()  # mistake: stride defaults to kernel_size, not 1
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError("padding should be at most half of the kernel size")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].max(axis=(-2, -1))


@mistake("max_pool2d_forward", expect="max_pool2d_forward.padding_ignored")
def max_pool2d_forward_ignores_padding(x, kernel_size, stride=None, padding=0):
    kh, kw = np.broadcast_to(kernel_size, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    # mistake: padding ignored: x is never padded with -inf (nor the padding checked)
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].max(axis=(-2, -1))


@alternative("max_pool2d_forward")
def max_pool2d_forward_running_maximum(x, kernel_size, stride=None, padding=0):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError("padding should be at most half of the kernel size")
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), -np.inf, dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError("window larger than the padded input")
    out = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            np.maximum(out, xp[:, :, u : u + sh * (oh - 1) + 1 : sh, v : v + sw * (ow - 1) + 1 : sw], out=out)
    return out


# ----------------------------------------------------------------------------- max_pool2d_backward


@mistake("max_pool2d_backward", expect="max_pool2d_backward.tie_gradient_went_every")
def max_pool2d_backward_every_tied_max(dout, x, kernel_size, stride=None):
    kh, kw = np.broadcast_to(kernel_size, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    oh, ow = dout.shape[2:]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    mask = win == win.max(axis=(-2, -1), keepdims=True)  # mistake: every tied maximum, not the first
    dx = np.zeros_like(x)
    for i in range(oh):
        for j in range(ow):
            dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += mask[:, :, i, j] * dout[:, :, i, j, None, None]
    return dx


@mistake("max_pool2d_backward", expect="max_pool2d_backward.tie_gradient_went_last")
def max_pool2d_backward_last_tied_max(dout, x, kernel_size, stride=None):
    kh, kw = np.broadcast_to(kernel_size, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    n, c = x.shape[:2]
    nn, cc = np.indices((n, c))
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].reshape(n, c, kh * kw)
            last = kh * kw - 1 - win[:, :, ::-1].argmax(axis=-1)  # mistake: last tied maximum, not the first
            dx[nn, cc, i * sh + last // kw, j * sw + last % kw] += dout[:, :, i, j]
    return dx


@mistake("max_pool2d_backward", expect="max_pool2d_backward.windows_overlap_stride_kernel")
def max_pool2d_backward_assigns_instead_of_adding(dout, x, kernel_size, stride=None):
    kh, kw = np.broadcast_to(kernel_size, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    n, c = x.shape[:2]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    oh, ow = win.shape[2:4]
    arg = win.reshape(n, c, oh, ow, kh * kw).argmax(axis=-1)
    nn, cc, ii, jj = np.indices((n, c, oh, ow))
    dx = np.zeros_like(x)
    # mistake: assignment: a repeated index keeps only one value; add (np.add.at)
    dx[nn, cc, ii * sh + arg // kw, jj * sw + arg % kw] = dout
    return dx


@mistake("max_pool2d_backward", expect="max_pool2d_backward.window_s_argmax_unravelled")
def max_pool2d_backward_unravels_column_major(dout, x, kernel_size, stride=None):
    kh, kw = np.broadcast_to(kernel_size, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    n, c = x.shape[:2]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    oh, ow = win.shape[2:4]
    arg = win.reshape(n, c, oh, ow, kh * kw).argmax(axis=-1)
    nn, cc, ii, jj = np.indices((n, c, oh, ow))
    dx = np.zeros_like(x)
    np.add.at(dx, (nn, cc, ii * sh + arg % kh, jj * sw + arg // kh), dout)  # mistake: column-major unravel of argmax
    return dx


@mistake("max_pool2d_backward", expect="generic.dtype_changed")
def max_pool2d_backward_float64_buffer(dout, x, kernel_size, stride=None):
    kh, kw = np.broadcast_to(kernel_size, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    n, c = x.shape[:2]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    oh, ow = win.shape[2:4]
    arg = win.reshape(n, c, oh, ow, kh * kw).argmax(axis=-1)
    nn, cc, ii, jj = np.indices((n, c, oh, ow))
    dx = np.zeros(x.shape)  # mistake: float64 buffer; use x.dtype
    np.add.at(dx, (nn, cc, ii * sh + arg // kw, jj * sw + arg % kw), dout)
    return dx


@alternative("max_pool2d_backward")
def max_pool2d_backward_loops_over_windows(dout, x, kernel_size, stride=None):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    n, c = x.shape[:2]
    nn, cc = np.indices((n, c))
    dx = np.zeros(x.shape, dtype=np.result_type(dout, x))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            u, v = np.unravel_index(window.reshape(n, c, -1).argmax(axis=-1), (kh, kw))
            dx[nn, cc, i * sh + u, j * sw + v] += dout[:, :, i, j]
    return dx


@alternative("max_pool2d_backward")
def max_pool2d_backward_first_of_mask(dout, x, kernel_size, stride=None):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    n, c = x.shape[:2]
    oh, ow = dout.shape[2:]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow].reshape(n, c, oh, ow, -1)
    is_max = win == win.max(axis=-1, keepdims=True)
    first = is_max & (np.cumsum(is_max, axis=-1) == 1)  # keep only the first maximum of each window
    routed = (first * dout[..., None]).reshape(n, c, oh, ow, kh, kw)
    dx = np.zeros(x.shape, dtype=np.result_type(dout, x))
    for u in range(kh):
        for v in range(kw):
            dx[:, :, u : u + sh * (oh - 1) + 1 : sh, v : v + sw * (ow - 1) + 1 : sw] += routed[..., u, v]
    return dx


# ----------------------------------------------------------------------------- avg_pool2d_forward


@mistake("avg_pool2d_forward", expect="avg_pool2d_forward.padding_left_out_average")
def avg_pool2d_forward_excludes_padding(x, kernel_size, stride=None, padding=0):
    (kh, kw), (ph, pw) = np.broadcast_to(kernel_size, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError("padding should be at most half of the kernel size")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ones = np.pad(np.ones(x.shape[2:], dtype=x.dtype), ((ph, ph), (pw, pw)))
    sums = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].sum(axis=(-2, -1))
    # mistake: real pixels per window; PyTorch divides by kh * kw, padding included
    counts = sliding_window_view(ones, (kh, kw))[::sh, ::sw].sum(axis=(-2, -1))
    return sums / counts


@mistake("avg_pool2d_forward", expect="avg_pool2d_forward.stride_defaulted_1_when")
def avg_pool2d_forward_stride_defaults_to_one(x, kernel_size, stride=None, padding=0):
    (kh, kw), (ph, pw) = np.broadcast_to(kernel_size, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    sh, sw = np.broadcast_to(stride or 1, 2).tolist()  # mistake: stride defaults to kernel_size, not 1
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError("padding should be at most half of the kernel size")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].mean(axis=(-2, -1))


@mistake("avg_pool2d_forward", expect="avg_pool2d_forward.divided_one_side_kernel")
def avg_pool2d_forward_divides_by_kernel_height(x, kernel_size, stride=None, padding=0):
    (kh, kw), (ph, pw) = np.broadcast_to(kernel_size, 2).tolist(), np.broadcast_to(padding, 2).tolist()
    sh, sw = (kh, kw) if stride is None else np.broadcast_to(stride, 2).tolist()
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError("padding should be at most half of the kernel size")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    # mistake: divides by kh, not kh * kw
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].sum(axis=(-2, -1)) / kh


@alternative("avg_pool2d_forward")
def avg_pool2d_forward_integral_image(x, kernel_size, stride=None, padding=0):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError("padding should be at most half of the kernel size")
    oh = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow = (x.shape[3] + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError("window larger than the padded input")
    # summed-area table with a zero first row and column: S[i, j] = sum of xpad[:i, :j]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph + 1, ph), (pw + 1, pw)))
    table = xp.cumsum(axis=2).cumsum(axis=3)
    top, left = (np.arange(oh) * sh)[:, None], (np.arange(ow) * sw)[None, :]
    sums = table[:, :, top + kh, left + kw] - table[:, :, top, left + kw] - table[:, :, top + kh, left] + table[:, :, top, left]
    return (sums / (kh * kw)).astype(x.dtype)


@mistake("same_padding", expect="same_padding.padding_kernel_size_1")
def same_padding_half_the_dilated_kernel(kernel_size, dilation=1):
    # dilation * kernel_size // 2 is right for dilation 1 and odd kernels, and one too many for dilation 2.
    if kernel_size < 1 or dilation < 1:
        raise ValueError(f"invalid kernel_size={kernel_size} or dilation={dilation}")
    if dilation * (kernel_size - 1) % 2:
        raise ValueError("no symmetric padding keeps the size")
    return dilation * kernel_size // 2  # mistake: kernel_size, not kernel_size - 1


@mistake("conv2d_backward", expect="conv2d_backward.db_summed_over_wrong")
def conv2d_backward_db_per_example(dout, x, w, stride=1, padding=0):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    kh, kw = w.shape[2:]
    xpad = _pad(x, (ph, pw))
    db = dout.sum(axis=(2, 3))  # mistake: one bias gradient per example and filter: the batch axis was kept
    windows = _windows(xpad, (kh, kw), (sh, sw), (1, 1))
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))
    n, f, oh, ow = dout.shape
    spread = np.zeros((n, f, (oh - 1) * sh + 1, (ow - 1) * sw + 1), dtype=dout.dtype)
    spread[:, :, ::sh, ::sw] = dout
    full = _pad(spread, (kh - 1, kw - 1))
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dxpad = _correlate(full, flipped, (1, 1), (1, 1))
    hp, wp = xpad.shape[2:]
    dxpad = np.pad(dxpad, ((0, 0), (0, 0), (0, hp - dxpad.shape[2]), (0, wp - dxpad.shape[3])))
    return dxpad[:, :, ph : hp - ph, pw : wp - pw], dw, db


@mistake("conv2d_forward", expect="conv2d_forward.bias_along_wrong_axis")
def conv2d_forward_bias_as_column(x, w, b, stride=1, padding=0, dilation=1):
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but the filters expect {w.shape[1]}")
    out = _correlate(_pad(x, _pair(padding)), w, _pair(stride), _pair(dilation))
    return out if b is None else out + b[:, None]  # mistake: b[:, None] lines up with (OH, OW), not with the channels
