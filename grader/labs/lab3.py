"""Lab 3, convolution and pooling: the tasks, their checks and the mistakes they recognise.

PyTorch is the oracle throughout: output sizes from its functional layers, a
network's shapes from running a ``torch.nn.Sequential`` of the same layers on a
small input of zeros, parameter counts from layers built on the meta device (no
data, so no initialisation), values from ``torch.nn.functional`` on every device
present, gradients from autograd. The mistakes' producers compute with PyTorch too: the student
release ships this file, and none of it may run as a solution where the students' code runs (a
NumPy lab's worker cannot import torch). One-line formulas the handout prints (the output size,
the parameter count of a layer) are no secret, and their slips stay plain arithmetic.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from grader.declare import oracles
from grader.declare.checks import DEVICES_BOTH, Matches, Raises, Reference, Torch, Worked
from grader.declare.oracles import in_torch
from grader.declare.spec import Call, Lab, Mistake, Task, Tolerance, call
from grader.declare.strategies import float_arrays, pair, size_or_pair, sizes


# ----------------------------------------------------------------------------- sizes


def _torch_size(kind: str, n: int, kernel_size: int, stride: int | None = None, padding: int = 0,
                dilation: int = 1, ceil_mode: bool = False) -> int | None:
    """PyTorch's own output length for a 1-D layer, or None where it refuses."""
    t = oracles.torch()
    x = t.zeros(1, 1, n)
    try:
        if kind == "conv":
            out = t.nn.functional.conv1d(x, t.zeros(1, 1, kernel_size), None, stride or 1, padding, dilation)
        else:
            out = t.nn.functional.max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode)
    except (RuntimeError, ValueError):
        return None
    return int(out.shape[-1])


def _valid(kind: str) -> Any:
    def compute(*args: Any, **kwargs: Any) -> int:
        size = _torch_size(kind, *args, **kwargs) or 0  # None: PyTorch refuses
        assume(size >= 1)
        return size
    return compute


conv_sizes = st.builds(call, sizes(1, 64), sizes(1, 11), sizes(1, 5), sizes(0, 4), sizes(1, 3))
pool_sizes = st.builds(call, sizes(1, 64), sizes(1, 7), st.one_of(st.none(), sizes(1, 5)), sizes(0, 3), sizes(1, 2),
                       st.booleans())
invalid_conv_sizes = st.one_of(
    st.builds(lambda n, k: call(n, k, note="the kernel does not fit in the input"), sizes(1, 8), sizes(9, 16)),
    st.builds(lambda k: call(5, k, note="kernel_size must be positive"), sizes(-3, 0)),
    st.builds(lambda s: call(5, 3, s, note="stride must be positive"), sizes(-3, 0)),
    st.builds(lambda p: call(5, 3, 1, p, note="padding may not be negative"), sizes(-3, -1)),
    st.builds(lambda d: call(5, 3, 1, 0, d, note="dilation must be positive"), sizes(-3, 0)),
)
invalid_pool_sizes = st.one_of(
    st.builds(lambda k, p: call(16, k, None, p, note="padding is more than half the kernel"),
              sizes(1, 5), sizes(3, 6)).filter(lambda c: 2 * c.args[3] > c.args[1]),
    st.builds(lambda n, k: call(n, k, note="the window does not fit in the input"), sizes(1, 4), sizes(5, 9)),
    st.builds(lambda s: call(8, 2, s, note="stride must be positive"), sizes(-3, 0)),
)


def _span(n: int, k: int, p: int, d: int) -> int:
    """How far the windows' starts reach, n + 2p - d(k - 1) - 1 (negative when no window fits): PyTorch's conv1d
    output at stride 1 on an input longer by ``extra`` (so that one always fits), less one and less ``extra``."""
    extra = d * k + 2 * p + 64
    size = _torch_size("conv", n + extra, k, 1, p, d)
    if size is None:
        raise ValueError("PyTorch refuses this size")
    return size - 1 - extra


def _conv_size_with(rounding: Any, dilated: bool = True, pad_sides: int = 2) -> Any:
    """conv_output_size with one wrong rule: the span (from PyTorch) divided by the stride and rounded by ``rounding``,
    with dilation left out or the padding on one side only."""
    def size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
        return int(rounding(_span(n - (2 - pad_sides) * p, k, p, d if dilated else 1) / s)) + 1
    return size


def _pool_size_without_rule(n: int, k: int, s: int | None = None, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """pool_output_size with a plain ceil, without PyTorch's rule on the last window (the span from PyTorch)."""
    return (math.ceil if ceil_mode else math.floor)(_span(n, k, p, d) / (k if s is None else s)) + 1


NOT_IN_HANDOUT = "a fixed example, its value from PyTorch (not one of the handout's worked examples)"

CONV_OUTPUT_SIZE = Task(
    "conv_output_size", points=8,
    checks=[
        Worked([(call(227, 11, 4), 55), (call(4, 3), 2), (call(4, 3, 1, 1), 4), (call(7, 3, 1, 0, 2, note=NOT_IN_HANDOUT), 3),
                (call(32, 5, 2, 2), 16)]),
        Matches(Torch("torch.nn.functional.conv1d", _valid("conv")), conv_sizes, max_examples=36),
        Raises("ValueError", invalid_conv_sizes, max_examples=20),
    ],
    mistakes=[
        Mistake("matches_round_instead_floor",
                "matches round() instead of floor() in the output-size formula: the division rounds down",
                produces=_conv_size_with(round)),
        Mistake("matches_ceil_instead_floor",
                "matches ceil() instead of floor() in the output-size formula: the division rounds down",
                produces=_conv_size_with(math.ceil)),
        Mistake("dilation_missing_dilated_kernel",
                "dilation is missing: a dilated kernel reaches dilation*(kernel_size-1)+1 inputs",
                produces=_conv_size_with(math.floor, dilated=False)),
        Mistake("padding_counted_once_added",
                "padding counted once: it is added on both sides (2*padding)",
                produces=_conv_size_with(math.floor, pad_sides=1)),
    ],
)

POOL_OUTPUT_SIZE = Task(
    "pool_output_size", points=8,
    checks=[
        Worked([(call(55, 3, 2), 27), (call(4, 2), 2), (call(5, 2), 2), (call(5, 2, ceil_mode=True), 3),
                (call(6, 2, 2, 1, ceil_mode=True), 4), (call(5, 3, 2, 1, ceil_mode=True), 3),
                (call(5, 2, 2, 1, ceil_mode=True, note="the last window would start in the padding"), 3)]),
        Matches(Torch("torch.nn.functional.max_pool1d", _valid("pool")), pool_sizes, max_examples=36),
        Raises("ValueError", invalid_pool_sizes, max_examples=20),
    ],
    mistakes=[
        Mistake("stride_defaulted_1_pooling",
                "stride defaulted to 1: for pooling it defaults to kernel_size",
                produces=lambda n, k, s=None, p=0, d=1, ceil_mode=False:
                _torch_size("pool", n, k, 1, p, d, ceil_mode) if s is None else None),
        Mistake("ceil_mode_without_pytorch",
                "ceil_mode without PyTorch's rule: drop a last window that would start in the right padding",
                produces=_pool_size_without_rule,
                detects=lambda c, e, r: bool(c.kwargs.get("ceil_mode", c.args[5] if len(c.args) > 5 else False))
                and r == e + 1),
    ],
)

def _same_padding(k: int, dilation: int = 1) -> int:
    """The padding p for which PyTorch's conv1d of an input of 32 keeps its length (the smallest, at stride 1)."""
    return next(p for p in range(0, dilation * k + 1) if _torch_size("conv", 32, k, 1, p, dilation) == 32)


SAME_PADDING = Task(
    "same_padding", points=5,
    checks=[
        Worked([(call(3), 1), (call(5), 2), (call(1), 0), (call(3, 2), 2), (call(5, 3), 6), (call(4, 2), 3)]),
        Matches(Torch("the padding with which torch.nn.functional.conv1d keeps the size at stride 1", _same_padding),
                st.builds(lambda k, d: call(2 * k + 1, d), sizes(0, 6), sizes(1, 4)), max_examples=20),
        Raises("ValueError", st.builds(lambda k: call(2 * k, note="an even kernel has no symmetric 'same' padding"),
                                       sizes(1, 6)), max_examples=10),
    ],
    mistakes=[
        Mistake("dilation_missing_padding_cover",
                "dilation is missing: the padding must cover dilation*(kernel_size-1)", produces=lambda k, d=1: (k - 1) // 2),
        Mistake("padding_kernel_size_1",
                "padding is (kernel_size-1)/2 per side, not kernel_size/2", produces=lambda k, d=1: d * k // 2),
        Mistake("padding_added_both_sides",
                "the padding is added on both sides, so each side needs only half of dilation*(kernel_size-1)",
                produces=lambda k, d=1: d * (k - 1)),
    ],
)


# ----------------------------------------------------------------------------- parameter counts


def _parameters(kind: str, *args: Any, **kwargs: Any) -> int:
    """The parameter count of a torch.nn layer built on the meta device (no data, no initialisation)."""
    return sum(p.numel() for p in getattr(oracles.torch().nn, kind)(*args, device="meta", **kwargs).parameters())


conv_param_cases = st.builds(
    lambda g, i, o, k, bias: call(g * i, g * o, k, bias, g) if g > 1 else call(i, o, k, bias),
    sizes(1, 4), sizes(1, 64), sizes(1, 64), size_or_pair(1, 7), st.booleans(),
)

CONV2D_PARAMS = Task(
    "conv2d_params", points=5,
    checks=[
        Worked([(call(3, 96, 11), 34944), (call(64, 64, 3, False), 36864), (call(64, 64, 3, True, 64, note=NOT_IN_HANDOUT), 640),
                (call(192, 64, 1), 12352), (call(3, 8, (3, 5)), 368)]),
        Matches(Torch("the parameters of torch.nn.Conv2d",
                      lambda i, o, k, bias=True, groups=1: _parameters("Conv2d", i, o, k, bias=bias, groups=groups)),
                conv_param_cases, max_examples=24),
    ],
    mistakes=[
        Mistake("bias_missing_conv_layer",
                "the bias is missing: a conv layer with bias=True has out_channels biases",
                produces=lambda i, o, k, bias=True, groups=1: o * (i // groups) * math.prod(pair(k))),
        Mistake("input_channels_missing_every",
                "the input channels are missing: every filter spans all (in_channels/groups) input channels",
                produces=lambda i, o, k, bias=True, groups=1: o * math.prod(pair(k)) + (o if bias else 0)),
        Mistake("groups_ignored_each_filter",
                "groups ignored: each filter sees only in_channels/groups channels",
                produces=lambda i, o, k, bias=True, groups=1: o * i * math.prod(pair(k)) + (o if bias else 0)),
        Mistake("groups_divided_twice",
                "groups divided twice: each of the out_channels filters spans in_channels/groups channels, so the "
                "weights are out_channels * (in_channels/groups) * KH * KW; dividing out_channels by groups as well "
                "counts one group's filters only",
                produces=lambda i, o, k, bias=True, groups=1: (o // groups) * (i // groups) * math.prod(pair(k))
                + (o if bias else 0)),
    ],
)

LINEAR_PARAMS = Task(
    "linear_params", points=4,
    checks=[
        Worked([(call(9216, 4096), 37752832), (call(4096, 1000), 4097000), (call(10, 3, False), 30)]),
        Matches(Torch("the parameters of torch.nn.Linear", functools.partial(_parameters, "Linear")),
                st.builds(call, sizes(1, 5000), sizes(1, 5000), st.booleans()), max_examples=20),
    ],
    mistakes=[
        Mistake("bias_missing_linear_layer",
                "the bias is missing: a linear layer with bias=True has out_features biases",
                produces=lambda i, o, bias=True: i * o),
        Mistake("one_bias_per_input",
                "one bias per input: a linear layer has out_features biases, not in_features",
                produces=lambda i, o, bias=True: i * o + (i if bias else 0)),
    ],
)


# ----------------------------------------------------------------------------- networks


ALEXNET_LAYERS = [
    {"type": "conv", "out_channels": 96, "kernel_size": 11, "stride": 4},
    {"type": "maxpool", "kernel_size": 3, "stride": 2},
    {"type": "conv", "out_channels": 256, "kernel_size": 5, "padding": 2},
    {"type": "maxpool", "kernel_size": 3, "stride": 2},
    {"type": "conv", "out_channels": 384, "kernel_size": 3, "padding": 1},
    {"type": "conv", "out_channels": 384, "kernel_size": 3, "padding": 1},
    {"type": "conv", "out_channels": 256, "kernel_size": 3, "padding": 1},
    {"type": "maxpool", "kernel_size": 3, "stride": 2},
    {"type": "flatten"},
    {"type": "linear", "out_features": 4096},
    {"type": "linear", "out_features": 4096},
    {"type": "linear", "out_features": 1000},
]
ALEXNET_SHAPES = [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13), (384, 13, 13),
                  (256, 13, 13), (256, 6, 6), (9216,), (4096,), (4096,), (1000,)]
ALEXNET_PARAMS = 62_378_344


class _Refused(Exception):
    """PyTorch (or the contract) does not accept this network."""


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=None)
def _module(kind: str, channels: int, *settings: Any) -> Any:
    """One torch.nn layer, built once per configuration: on the meta device (no initialisation, the slow
    part), then given zeroed CPU storage. The forward pass runs on the CPU: PyTorch's meta kernels for
    linear layers load torch._dynamo on first use, a second of CPU for one tiny matrix product."""
    nn = oracles.torch().nn
    if kind in ("conv", "linear"):
        layer = (nn.Conv2d if kind == "conv" else nn.Linear)(channels, *settings, device="meta")
        for name, parameter in list(layer.named_parameters()):
            setattr(layer, name, nn.Parameter(oracles.torch().zeros(parameter.shape)))
        return layer
    if kind in ("maxpool", "avgpool"):
        return (nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(*settings)
    if kind == "pad":  # for the mistakes' networks: padding (left, right, top, bottom) added by itself
        return nn.ZeroPad2d(*settings)
    return nn.ReLU() if kind == "relu" else nn.Flatten(0)


def _settings(layer: dict[str, Any]) -> tuple[Any, ...]:
    """A layer's dict as the arguments of its torch.nn module (after the input channels)."""
    kind = layer["type"]
    if kind == "conv":
        return (layer["out_channels"], _freeze(layer["kernel_size"]), _freeze(layer.get("stride", 1)),
                _freeze(layer.get("padding", 0)))
    if kind in ("maxpool", "avgpool"):
        return (_freeze(layer["kernel_size"]), _freeze(layer.get("stride", layer["kernel_size"])),
                _freeze(layer.get("padding", 0)))
    if kind == "pad":
        return (_freeze(layer["padding"]),)
    return (layer["out_features"],) if kind == "linear" else ()


def _torch_layers(input_shape: tuple[int, ...], layers: list[dict[str, Any]]) -> tuple[list[tuple[int, ...]], int]:
    """Build the layers as an nn.Sequential and run a (C, H, W) input of zeros through it: the shape
    after each layer, and the parameter count."""
    t = oracles.torch()
    x = t.zeros(*input_shape)
    network = t.nn.Sequential()
    shapes: list[tuple[int, ...]] = []
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool") and x.dim() != 3:
            raise _Refused(f"{kind} on a flat input")
        if kind == "linear" and x.dim() != 1:
            raise _Refused("linear on an unflattened input")
        network.append(_module(kind, int(x.shape[0]), *_settings(layer)))
        try:
            x = network[-1](x)
        except (RuntimeError, ValueError) as refused:
            raise _Refused(str(refused)) from None
        if 0 in x.shape:
            raise _Refused("an empty output")
        shapes.append(tuple(int(n) for n in x.shape))
    # per layer: a configuration used twice is one cached module, and parameters() would count it once
    return shapes, sum(p.numel() for module in network for p in module.parameters())


@st.composite
def networks(draw: st.DrawFn) -> Call:
    """A small CNN: a few conv/pool/relu layers, then maybe flatten and linear layers."""
    shape = (draw(sizes(1, 4)), draw(sizes(8, 40)), draw(sizes(8, 40)))
    layers: list[dict[str, Any]] = []
    for _ in range(draw(sizes(1, 4))):
        kind = draw(st.sampled_from(("conv", "maxpool", "avgpool", "relu")))
        if kind == "conv":
            layer = {"type": "conv", "out_channels": draw(sizes(1, 16)), "kernel_size": draw(size_or_pair(1, 5))}
            if draw(st.booleans()):
                layer["stride"] = draw(size_or_pair(1, 3))
            if draw(st.booleans()):
                layer["padding"] = draw(size_or_pair(0, 2))
        elif kind in ("maxpool", "avgpool"):
            k = draw(sizes(1, 3))
            layer = {"type": kind, "kernel_size": k}
            if draw(st.booleans()):
                layer["stride"] = draw(sizes(1, 3))
            if draw(st.booleans()):
                layer["padding"] = draw(sizes(0, k // 2))
        else:
            layer = {"type": "relu"}
        layers.append(layer)
    if draw(st.booleans()):
        layers.append({"type": "flatten"})
        layers += [{"type": "linear", "out_features": draw(sizes(1, 64))} for _ in range(draw(sizes(0, 2)))]
    return call(shape, layers)


def _network_oracle(part: int) -> Any:
    def compute(input_shape: tuple[int, ...], layers: list[dict[str, Any]]) -> Any:
        try:
            return _torch_layers(input_shape, layers)[part]
        except _Refused:
            assume(False)
            raise
    return compute


INVALID_NETWORKS = [
    call((3, 8, 8), [{"type": "linear", "out_features": 10}], note="a linear layer on an unflattened (C, H, W) shape"),
    call((3, 8, 8), [{"type": "flatten"}, {"type": "conv", "out_channels": 4, "kernel_size": 3}],
         note="a conv layer on a flat shape"),
    call((1, 4, 4), [{"type": "conv", "out_channels": 2, "kernel_size": 5}], note="the kernel does not fit: size below 1"),
    call((2, 6, 6), [{"type": "maxpool", "kernel_size": 2}, {"type": "maxpool", "kernel_size": 2},
                     {"type": "maxpool", "kernel_size": 2}], note="the third pool has a 1x1 input: size below 1"),
]

def _shapes_with(input_shape: tuple[int, ...], layers: list[dict[str, Any]], pad_sides: int = 2,
                 pool_stride_one: bool = False) -> list[tuple[int, ...]]:
    """Shapes after each layer as a student with one wrong rule traces them (for hints), from PyTorch: the
    network with its pools given stride 1, or with each layer's padding added on one side only."""
    changed: list[dict[str, Any]] = []
    for layer in layers:
        layer = dict(layer)
        if pool_stride_one and layer["type"] in ("maxpool", "avgpool"):
            layer.setdefault("stride", 1)
        if pad_sides == 1 and layer["type"] in ("conv", "maxpool", "avgpool") and layer.get("padding", 0) != 0:
            ph, pw = pair(layer.pop("padding"))
            changed.append({"type": "pad", "padding": (pw, 0, ph, 0)})
        changed.append(layer)
    shapes, _ = _torch_layers(tuple(input_shape), changed)
    return [shape for shape, layer in zip(shapes, changed) if layer["type"] != "pad"]


def _traced_as(**rule: Any) -> Any:
    def detect(c: Call, expected: Any, received: Any) -> bool:
        return isinstance(received, list) and [tuple(s) for s in received if isinstance(s, (tuple, list))] \
            == _shapes_with(*c.args, **rule) != expected
    return detect


TRACE_SHAPES = Task(
    "trace_shapes", points=8,
    checks=[
        Worked([(call((3, 227, 227), ALEXNET_LAYERS, note="AlexNet"), ALEXNET_SHAPES)]),
        Matches(Torch("a torch.nn.Sequential of the same layers", _network_oracle(0)), networks(), max_examples=24),
        Raises("ValueError", examples=INVALID_NETWORKS),
    ],
    mistakes=[
        Mistake("pool_stride_defaulted_1",
                "the pool stride defaulted to 1: a pooling layer's stride defaults to its kernel_size",
                detects=_traced_as(pool_stride_one=True)),
        Mistake("padding_counted_once_conv",
                "padding counted once: a conv or pool layer pads both sides (2*padding)", detects=_traced_as(pad_sides=1)),
    ],
)


def _params_with_image_channels(c: Call) -> int:
    """The parameters of the network's layers (from PyTorch) if every conv layer took the image's channels."""
    input_shape, layers = c.args
    shapes = [tuple(input_shape)] + _torch_layers(input_shape, layers)[0]
    return sum(p.numel() for before, layer in zip(shapes, layers) if layer["type"] in ("conv", "linear")
               for p in _module(layer["type"], input_shape[0] if layer["type"] == "conv" else before[0],
                                *_settings(layer)).parameters())


def _bias_count(call_: Call) -> int:
    shapes, _ = _torch_layers(*call_.args)
    return sum(s[0] for s, l in zip(shapes, call_.args[1]) if l["type"] in ("conv", "linear"))


COUNT_PARAMS = Task(
    "count_params", points=7,
    checks=[
        Worked([(call((3, 227, 227), ALEXNET_LAYERS, note="AlexNet"), ALEXNET_PARAMS)]),
        Matches(Torch("the parameters of a torch.nn.Sequential of the same layers", _network_oracle(1)), networks(),
                max_examples=24),
        Raises("ValueError", examples=INVALID_NETWORKS, name="raises ValueError wherever trace_shapes does"),
    ],
    mistakes=[
        Mistake("biases_missing_every_conv",
                "the biases are missing: every conv and linear layer has one bias per output channel or feature",
                detects=lambda c, e, r: isinstance(r, int) and r == e - _bias_count(c)),
        Mistake("every_conv_filter_given",
                "every conv filter was given the image's input channels: a filter spans the channels of the layer "
                "before it (the previous layer's out_channels)",
                detects=lambda c, e, r: isinstance(r, int) and r == _params_with_image_channels(c) != e),
    ],
)


# ----------------------------------------------------------------------------- convolution


@st.composite
def conv_calls(draw: st.DrawFn, backward: bool = False) -> Call:
    """x, w, b with stride, padding (ints or pairs) and dilation such that the output is at least 1x1."""
    n, c, f = draw(sizes(1, 2)), draw(sizes(1, 3)), draw(sizes(1, 3))
    kh, kw = draw(sizes(1, 3)), draw(sizes(1, 3))
    stride, padding = draw(size_or_pair(1, 3)), draw(size_or_pair(0, 2))
    dilation = 1 if backward else draw(sizes(1, 2))
    (ph, pw) = pair(padding)
    h = draw(sizes(max(1, dilation * (kh - 1) + 1 - 2 * ph), 7))
    w_ = draw(sizes(max(1, dilation * (kw - 1) + 1 - 2 * pw), 7))
    x = draw(float_arrays((n, c, h, w_)))
    w = draw(float_arrays((f, c, kh, kw)))
    if backward:
        sh, sw = pair(stride)
        dout = draw(float_arrays((n, f, (h + 2 * ph - kh) // sh + 1, (w_ + 2 * pw - kw) // sw + 1)))
        return call(dout, x, w, stride=stride, padding=padding)
    b = draw(st.one_of(st.none(), float_arrays((f,))))
    return call(x, w, b, stride=stride, padding=padding, dilation=dilation)


def _torch_conv(x: Any, w: Any, b: Any, **kw: Any) -> Any:
    return oracles.torch().nn.functional.conv2d(x, w, b, **kw)


_conv = in_torch(_torch_conv)  # the producers': PyTorch's convolution as a function of NumPy arrays


def _conv_no_bias(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, **kw: Any) -> np.ndarray:
    return _conv(x, w, None, **kw)


def _conv_cropped(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Any = 1, padding: Any = 0,
                  dilation: Any = 1, *, rows_only: bool = False, undilated: bool = False) -> np.ndarray:
    """A convolution gone wrong in one of its loops, cropped to the right output size: the stride used on the rows
    only (``rows_only``), or every kernel tap next to the other (``undilated``)."""
    right = _conv(x, w, b, stride=stride, padding=padding, dilation=dilation)
    sh, used = pair(stride)[0], (1 if undilated else dilation)
    wrong = _conv(x, w, b, stride=(sh, 1) if rows_only else stride, padding=padding, dilation=used)
    return np.ascontiguousarray(wrong[:, :, :right.shape[2], :right.shape[3]])


def _conv_padded_in_front(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Any = 1, padding: Any = 0,
                          dilation: Any = 1) -> np.ndarray:
    ph, pw = pair(padding)
    return _conv(np.pad(x, ((0, 0), (0, 0), (ph, 0), (pw, 0))), w, b, stride=stride, dilation=dilation)


def _bias_broadcast_error(call_: Call, error: str) -> bool:
    """Adding b[:, None] (F, 1) to the (N, F, OH, OW) output failed to broadcast: F is neither 1 nor OH."""
    b = call_.args[2] if len(call_.args) > 2 else call_.kwargs.get("b")
    return "could not be broadcast" in error and isinstance(b, np.ndarray) and b.size > 1 \
        and f"({b.size},1)" in error.replace(" ", "")


HANDOUT_X = np.array([[1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]], dtype=np.float64).reshape(1, 1, 4, 4)
HANDOUT_W = np.array([[2, 0, 1], [0, 1, 2], [1, 0, 2]], dtype=np.float64).reshape(1, 1, 3, 3)

# out, dx and dw are sums of many products (x * w, x * dout, w * dout); in float32 each carries the rounding of its terms
# (about 1e-7 of the largest), which terms that cancel leave in an entry near 0: atol scales with the largest
# |expected| entry (seed 105 drew |dout| ~ 2000 and a dw entry of 4.37 off by 6e-4; seed 97 cost the tap-by-tap
# conv2d_forward alternative 0.94 the same way).
SUMS_FLOAT32 = {"float32": Tolerance(1e-4, 1e-5, scaled=True)}


CONV2D_FORWARD = Task(
    "conv2d_forward", points=15,
    checks=[
        Worked([
            (call(HANDOUT_X, HANDOUT_W, None, note="the handout's 4x4 example"),
             np.array([[15, 16], [6, 15]], dtype=np.float64).reshape(1, 1, 2, 2)),
            (call(HANDOUT_X, HANDOUT_W, None, padding=1, note="the handout's 4x4 example with padding 1"),
             np.array([[7, 12, 10, 2], [4, 15, 16, 10], [10, 6, 15, 6], [8, 10, 4, 3]], dtype=np.float64).reshape(1, 1, 4, 4)),
        ]),
        Matches(Torch("torch.nn.functional.conv2d", _torch_conv), conv_calls(), variants=DEVICES_BOTH,
                tolerance=SUMS_FLOAT32),
        Matches(Reference(), conv_calls()),
    ],
    mistakes=[
        Mistake("matches_true_convolution_kernel",
                "matches a true convolution (kernel flipped): deep-learning 'convolution' is cross-correlation, "
                "do not flip w",
                produces=lambda x, w, b, **kw: _conv(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, **kw)),
        Mistake("bias_missing_add_b",
                "the bias is missing: add b[f] to every position of output channel f", produces=_conv_no_bias),
        Mistake("input_channels_were_averaged",
                "the input channels were averaged: a filter sums its products over all input channels",
                produces=lambda x, w, b, **kw: _conv_no_bias(x, w, None, **kw) / x.shape[1]
                + (0 if b is None else b.reshape(1, -1, 1, 1))),
        Mistake("stride_on_rows_only",
                "the stride was applied to the rows only: the window moves by stride[1] along the columns too "
                "(the column index j * sw, not j)", produces=lambda *a, **kw: _conv_cropped(*a, **kw, rows_only=True)),
        Mistake("dilation_ignored",
                "dilation is missing: a dilated kernel takes every dilation-th input, x[i * s + u * d], reaching "
                "dilation * (KH - 1) + 1 rows", produces=lambda *a, **kw: _conv_cropped(*a, **kw, undilated=True)),
        Mistake("padding_on_one_side",
                "the zeros were added on one side only: padding goes on both sides (top and bottom, left and right)",
                produces=_conv_padded_in_front),
        Mistake("bias_along_wrong_axis",
                "the bias was added along the wrong axis: b[:, None] has shape (F, 1), which lines up with the "
                "output's height and width, not its channels; add b.reshape(1, F, 1, 1)",
                produces=lambda x, w, b, **kw: _conv_no_bias(x, w, None, **kw) + b[:, None],
                raises=_bias_broadcast_error),
    ],
)


def _torch_conv_grads(dout: Any, x: Any, w: Any, **kw: Any) -> Any:
    t = oracles.torch()
    x, w = x.requires_grad_(True), w.requires_grad_(True)
    b = t.zeros(w.shape[0], dtype=w.dtype, device=w.device, requires_grad=True)
    return oracles.vjp(t.nn.functional.conv2d(x, w, b, **kw), (x, w, b), dout)


_conv_grads = in_torch(_torch_conv_grads)


def _grads_with(change: Any) -> Any:
    """A producer for a backward mistake: the true gradients with one part changed."""
    def produce(dout: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> Any:
        return change(*_conv_grads(dout, x, w, **kw), dout)
    return produce


def _dx_of_padded_input(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Any = 1, padding: Any = 0) -> Any:
    """(dxpad, dw, db): the gradient of the padded input where dx belongs."""
    ph, pw = pair(padding)
    dxpad = _conv_grads(dout, np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))), w, stride=stride)[0]
    _, dw, db = _conv_grads(dout, x, w, stride=stride, padding=padding)
    return dxpad, dw, db


def _dx_unflipped(call_: Call) -> np.ndarray:
    dout, x, w = call_.args
    return _conv_grads(dout, x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), **call_.kwargs)[0]


CONV2D_BACKWARD = Task(
    "conv2d_backward", points=15, returns=("dx", "dw", "db"),
    checks=[
        Matches(Torch("torch.autograd through torch.nn.functional.conv2d", _torch_conv_grads), conv_calls(backward=True),
                variants=DEVICES_BOTH, tolerance=SUMS_FLOAT32),
        Matches(Reference(), conv_calls(backward=True)),
    ],
    mistakes=[
        Mistake("db_summed_over_wrong",
                "db is summed over the wrong axes: sum dout over N, OH and OW, keeping one entry per filter",
                detects=lambda c, e, r: isinstance(r, (tuple, list)) and len(r) == 3 and isinstance(r[2], np.ndarray)
                and r[2].shape != e[2].shape),
        Mistake("db_mean_bias_added",
                "db is a mean: the bias is added at every position of every example, so sum dout, do not average it",
                produces=_grads_with(lambda dx, dw, db, dout: (dx, dw, dout.mean(axis=(0, 2, 3))))),
        Mistake("db_uses_only_first",
                "db uses only the first example: sum dout over the whole batch as well as the positions",
                produces=_grads_with(lambda dx, dw, db, dout: (dx, dw, dout[0].sum(axis=(1, 2))))),
        Mistake("dw_flipped_dw_f",
                "dw is flipped: dw[f, c, u, v] correlates the input with dout without flipping the kernel axes",
                produces=_grads_with(lambda dx, dw, db, dout: (dx, np.ascontiguousarray(dw[:, :, ::-1, ::-1]), db))),
        Mistake("dw_came_out_c",
                "dw came out as (C, KH, KW, F) and was reshaped to (F, C, KH, KW): transpose the axes instead of "
                "reshaping", produces=_grads_with(lambda dx, dw, db, dout: (dx, dw.transpose(1, 2, 3, 0).reshape(dw.shape), db))),
        Mistake("dx_not_cropped",
                "dx is the gradient of the padded input: crop the padding off, dx = dxpad[:, :, ph:ph + H, pw:pw + W], "
                "so that dx has x's shape", produces=_dx_of_padded_input),
        Mistake("dx_used_kernel_without",
                "dx used the kernel without flipping it: dx is a full correlation with the flipped kernel",
                detects=lambda c, e, r: isinstance(r, (tuple, list)) and len(r) == 3 and isinstance(r[0], np.ndarray)
                and r[0].shape == e[0].shape and not np.allclose(r[0], e[0], atol=1e-6)
                and np.allclose(r[0], _dx_unflipped(c), atol=1e-6)),
    ],
)


# ----------------------------------------------------------------------------- pooling


@st.composite
def pool_calls(draw: st.DrawFn, backward: bool = False, pad: bool = True) -> Call:
    """x with a kernel, maybe a stride and padding, such that PyTorch accepts them."""
    kh, kw = draw(sizes(1, 3)), draw(sizes(1, 3))
    kernel: Any = kh if kh == kw and draw(st.booleans()) else (kh, kw)
    stride = draw(st.one_of(st.none(), size_or_pair(1, 3)))
    padding: Any = 0
    if pad and not backward and draw(st.booleans()):
        padding = (draw(sizes(0, kh // 2)), draw(sizes(0, kw // 2)))
    n, c = draw(sizes(1, 2)), draw(sizes(1, 3))
    h, w = draw(sizes(kh, 8)), draw(sizes(kw, 8))
    x = draw(float_arrays((n, c, h, w)))
    kwargs: dict[str, Any] = {} if stride is None else {"stride": stride}
    if backward:
        sh, sw = pair(stride if stride is not None else kernel)
        dout = draw(float_arrays((n, c, (h - kh) // sh + 1, (w - kw) // sw + 1)))
        return call(dout, x, kernel, **kwargs)
    if padding:
        kwargs["padding"] = padding
    return call(x, kernel, **kwargs)


def _torch_pool(kind: str) -> Any:
    return lambda x, *args, **kw: getattr(oracles.torch().nn.functional, f"{kind}_pool2d")(x, *args, **kw)


_max_pool, _avg_pool = in_torch(_torch_pool("max")), in_torch(_torch_pool("avg"))  # the producers'


def _torch_max_pool_grad(dout: Any, x: Any, *args: Any, **kw: Any) -> Any:
    out = oracles.torch().nn.functional.max_pool2d(x.requires_grad_(True), *args, **kw)
    return oracles.vjp(out, x, dout)[0]


def _stride_defaulted_to_1(pool: Any) -> Mistake:
    """The mistake of a ``pool`` (PyTorch's, as a producer) that takes a stride of None as 1, not kernel_size."""
    return Mistake("stride_defaulted_1_when", "the stride defaulted to 1: when stride is None it equals kernel_size",
                   produces=lambda x, kernel_size, stride=None, padding=0: pool(
                       x, kernel_size, 1 if stride is None else stride, padding))


def _max_pool_zero_padding(x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Any:
    ph, pw = pair(padding)
    return _max_pool(np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))), kernel_size, stride)


def _max_pool_grad_with(route: str) -> Any:
    """The gradient of max pooling routed a wrong way, by PyTorch: each window's gradient goes to every maximum
    of a tie ("every"), to the last maximum ("last"), to the maximum found by unravelling the window's flat
    argmax column by column ("column-major"), or to the first maximum with windows that share it overwriting
    each other instead of adding up ("overwritten")."""
    def produce(dout: np.ndarray, x: np.ndarray, kernel_size: Any, stride: Any = None) -> np.ndarray:
        t = oracles.torch()
        F = t.nn.functional
        (kh, kw), (sh, sw) = pair(kernel_size), pair(kernel_size if stride is None else stride)
        planes, rows, cols = x.shape[0] * x.shape[1], x.shape[2], x.shape[3]
        grads = t.as_tensor(dout).reshape(planes, 1, -1)
        windows = F.unfold(t.as_tensor(x).reshape(planes, 1, rows, cols), (kh, kw), stride=(sh, sw))  # (planes, kh*kw, L)
        tops = windows == windows.amax(1, keepdim=True)
        if route == "every":
            chosen = tops
        else:
            first = tops.to(t.uint8).argmax(1)  # the first maximum, row-major
            if route == "last":
                first = kh * kw - 1 - tops.flip(1).to(t.uint8).argmax(1)
            elif route == "column-major":
                first = (first % kh) * kw + first // kh
            chosen = F.one_hot(first, kh * kw).transpose(1, 2).to(t.bool)
        if route != "overwritten":
            dx = F.fold(chosen.to(grads.dtype) * grads, (rows, cols), (kh, kw), stride=(sh, sw))
            return dx.reshape(x.shape).numpy()
        columns = cols - kw + 1
        flat = t.zeros(planes, rows * cols, dtype=grads.dtype)
        for window in range(grads.shape[2]):  # in order: a later window overwrites an earlier one
            row, col = divmod(window, (columns - 1) // sw + 1)
            where = (row * sh + first[:, window] // kw) * cols + col * sw + first[:, window] % kw
            flat[t.arange(planes), where] = grads[:, 0, window]
        return flat.reshape(x.shape).numpy()
    return produce


HANDOUT_POOL = np.array([[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]],
                        dtype=np.float64).reshape(1, 1, 4, 4)

MAX_POOL2D_FORWARD = Task(
    "max_pool2d_forward", points=9,
    checks=[
        Worked([(call(HANDOUT_POOL, 2, note="the handout's 2x2 max-pooling example"),
                 np.array([[20, 30], [112, 37]], dtype=np.float64).reshape(1, 1, 2, 2))]),
        Matches(Torch("torch.nn.functional.max_pool2d", _torch_pool("max")), pool_calls(), variants=DEVICES_BOTH),
        Matches(Reference(), pool_calls()),
    ],
    mistakes=[
        _stride_defaulted_to_1(_max_pool),
        Mistake("padding_filled_zeros_max",
                "the padding was filled with zeros: for max pooling padding counts as -inf, so it never wins",
                produces=_max_pool_zero_padding),
        Mistake("padding_ignored",
                "the padding was ignored: pad x with -inf on every side (padding rows and columns) before sliding "
                "the windows, so that the output has conv_output_size(H, KH, stride, padding) rows",
                produces=lambda x, kernel_size, stride=None, padding=0: _max_pool(x, kernel_size, stride)),
    ],
)

MAX_POOL2D_BACKWARD = Task(
    "max_pool2d_backward", points=9,
    checks=[
        Matches(Torch("torch.autograd through torch.nn.functional.max_pool2d", _torch_max_pool_grad),
                pool_calls(backward=True), variants=DEVICES_BOTH),
        Matches(Reference(), pool_calls(backward=True)),
    ],
    mistakes=[
        Mistake("tie_gradient_went_every",
                "on a tie the gradient went to every maximum: it goes to the first maximum only (row-major order)",
                produces=_max_pool_grad_with("every")),
        Mistake("tie_gradient_went_last",
                "on a tie the gradient went to the last maximum: it goes to the first maximum (row-major order)",
                produces=_max_pool_grad_with("last")),
        Mistake("windows_overlap_stride_kernel",
                "windows overlap (stride < kernel): when two windows share a maximum their gradients add up "
                "(use += or np.add.at, not assignment)", produces=_max_pool_grad_with("overwritten")),
        Mistake("window_s_argmax_unravelled",
                "the window's argmax was unravelled column by column: flat index i of a KHxKW window is row i // KW, "
                "column i % KW (row-major)", produces=_max_pool_grad_with("column-major")),
    ],
)


AVG_POOL2D_FORWARD = Task(
    "avg_pool2d_forward", points=7,
    checks=[
        Worked([(call(HANDOUT_POOL, 2, note="the handout's 4x4 input, 2x2 average pooling"),
                 np.array([[13, 8], [79, 19.5]], dtype=np.float64).reshape(1, 1, 2, 2))]),
        Matches(Torch("torch.nn.functional.avg_pool2d", _torch_pool("avg")), pool_calls(), variants=DEVICES_BOTH),
        Matches(Reference(), pool_calls()),
    ],
    mistakes=[
        Mistake("padding_left_out_average",
                "the padding was left out of the average: PyTorch's default counts the zero padding "
                "(count_include_pad=True), dividing by kernel height x width",
                produces=lambda x, kernel_size, stride=None, padding=0: _avg_pool(
                    x, kernel_size, stride, padding, count_include_pad=False)),
        _stride_defaulted_to_1(_avg_pool),
        Mistake("divided_one_side_kernel",
                "divided by one side of the kernel: an average divides the window's sum by the window size KH*KW",
                detects=lambda c, e, r: isinstance(r, np.ndarray) and r.shape == e.shape and np.abs(e).max() > 0
                and any(np.allclose(r, e * f) for f in pair(c.args[1]) if f > 1)),
    ],
)

LAB = Lab(
    name="lab3",
    title="Convolution and pooling",
    module="conv",
    kind="numpy",
    banned_source=("torch",),
    tasks=[CONV_OUTPUT_SIZE, POOL_OUTPUT_SIZE, SAME_PADDING, CONV2D_PARAMS, LINEAR_PARAMS, TRACE_SHAPES, COUNT_PARAMS,
           CONV2D_FORWARD, CONV2D_BACKWARD, MAX_POOL2D_FORWARD, MAX_POOL2D_BACKWARD, AVG_POOL2D_FORWARD],
)
