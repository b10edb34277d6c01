"""Build a spiking network from its architecture description (docs/checkpoint.md).

Every model Tern trains is made by `build_model(arch)`, so the compiler can read any of them
from the arch alone. Parameters are named "<layer name>.<param>" in the state_dict, with
PyTorch's own parameter names, body layers of residual blocks included.
"""
from __future__ import annotations

import torch
from torch import nn

from .arch import ArchError, infer_shapes, normalize_arch
from .msat import ConvertedNeuron, IFSubtract, MSATNeuron
from .neuron import LIF
from .surrogate import Surrogate


def _per_step(module_forward, x: torch.Tensor) -> torch.Tensor:
    """Apply a stateless layer to a multi-step tensor [T, B, ...] by folding T into the batch."""
    y = module_forward(x.flatten(0, 1))
    return y.unflatten(0, x.shape[:2])


class StepConv2d(nn.Conv2d):
    def forward(self, x):
        return _per_step(super().forward, x)


class StepLinear(nn.Linear):
    def forward(self, x):
        return _per_step(super().forward, x)


class StepBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x):
        return _per_step(super().forward, x)


class StepBatchNorm1d(nn.BatchNorm1d):
    def forward(self, x):
        return _per_step(super().forward, x)


class StepAvgPool2d(nn.AvgPool2d):
    def forward(self, x):
        return _per_step(super().forward, x)


class StepReLU(nn.ReLU):
    """The ANN's activation (docs/msat.md): elementwise, so it needs no folding of T."""


class StepFlatten(nn.Module):
    """[T, B, C, H, W] -> [T, B, C·H·W] in PyTorch's row-major order."""

    def forward(self, x):
        return x.flatten(2)


class Residual(nn.Module):
    """Output current = body(x) + shortcut(x), x being the block's input (a·s from the previous LIF).

    The shortcut is the identity (an empty list) or a projection (1x1 conv2d + optional BN).
    The branch layers are registered on the network itself (their parameters are named
    "<layer name>.<param>"), so the block keeps only plain references to them.
    """

    def __init__(self, body: list[nn.Module], shortcut: list[nn.Module] = ()):
        super().__init__()
        object.__setattr__(self, "body", list(body))
        object.__setattr__(self, "shortcut", list(shortcut))

    def forward(self, x):
        h = x
        for layer in self.body:
            h = layer(h)
        skip = x
        for layer in self.shortcut:
            skip = layer(skip)
        return h + skip


def _make_layer(layer: dict, input_shape: tuple[int, ...], surrogate_function, detach_reset) -> nn.Module:
    kind = layer["type"]
    if kind == "conv2d":
        return StepConv2d(layer["in_channels"], layer["out_channels"], layer["kernel_size"],
                          stride=layer["stride"], padding=layer["padding"], bias=layer["bias"])
    if kind == "linear":
        return StepLinear(layer["in_features"], layer["out_features"], bias=layer["bias"])
    if kind == "batchnorm2d":
        return StepBatchNorm2d(layer["num_features"], eps=layer["eps"])
    if kind == "batchnorm1d":
        return StepBatchNorm1d(layer["num_features"], eps=layer["eps"])
    if kind == "lif":
        return LIF(neuron=layer["neuron"], tau_shift=layer["tau_shift"], v_threshold=layer["v_threshold"],
                   surrogate_function=surrogate_function, detach_reset=detach_reset,
                   amplitude=layer["amplitude"], mpbn=input_shape[0] if layer["mpbn"] else None,
                   mpbn_eps=layer["mpbn_eps"])
    if kind == "relu":
        return StepReLU()
    if kind == "if_subtract":
        return IFSubtract(layer)
    if kind == "msat":
        return MSATNeuron(layer)
    if kind == "avgpool2d":
        return StepAvgPool2d(layer["kernel_size"])
    if kind == "flatten":
        return StepFlatten()
    raise ArchError(f"layer {layer['name']!r} has unknown type {kind!r}")  # residual is built by the caller


class SpikingNet(nn.Module):
    """A spiking network built from an arch; `forward(images [B,C,H,W]) -> logits [B, classes]`.

    Images are uint8 (divided by 255 here) or float already in [0, 1] (= uint8 / 255). The
    first layers see the same input at every timestep (direct encoding); logits are the mean
    over T of the readout's output.
    """

    def __init__(self, arch: dict, surrogate_function: "str | Surrogate | None" = None,
                 detach_reset: bool = False):
        super().__init__()
        self._arch = normalize_arch(arch)
        self.timesteps = self._arch["timesteps"]
        self.input_shape = tuple(self._arch["input_shape"])
        inputs = self._layer_inputs()
        self._sequence: list[str] = []
        for layer in self._arch["layers"]:
            if layer["type"] == "residual":
                body, shortcut = ([self._register(inner["name"], _make_layer(
                    inner, inputs[inner["name"]], surrogate_function, detach_reset)) for inner in layer[branch]]
                    for branch in ("body", "shortcut"))
                self._register(layer["name"], Residual(body, shortcut))
            else:
                self._register(layer["name"], _make_layer(layer, inputs[layer["name"]],
                                                          surrogate_function, detach_reset))
            self._sequence.append(layer["name"])
        norm = self._arch["input_normalization"]
        mean = torch.tensor(norm["mean"] if norm else [0.0] * self.input_shape[0])
        std = torch.tensor(norm["std"] if norm else [1.0] * self.input_shape[0])
        # Not parameters: the arch holds them, so they stay out of the state_dict.
        self.register_buffer("_input_mean", mean.view(-1, 1, 1), persistent=False)
        self.register_buffer("_input_std", std.view(-1, 1, 1), persistent=False)

    def _layer_inputs(self) -> dict[str, tuple[int, ...]]:
        shapes = infer_shapes(self._arch, _normalized=True)
        inputs, shape = {}, self.input_shape
        for layer in self._arch["layers"]:
            inputs[layer["name"]] = shape
            for branch in ("body", "shortcut") if layer["type"] == "residual" else ():
                inner = shape
                for branch_layer in layer[branch]:
                    inputs[branch_layer["name"]] = inner
                    inner = shapes[branch_layer["name"]]
            shape = shapes[layer["name"]]
        return inputs

    def _register(self, name: str, module: nn.Module) -> nn.Module:
        if hasattr(self, name):
            raise ArchError(f"layer name {name!r} clashes with an attribute of the PyTorch module; rename it")
        self.add_module(name, module)
        return module

    @property
    def arch(self) -> dict:
        """The complete (normalised) architecture description; a copy, safe to modify."""
        return normalize_arch(self._arch)

    def prepare_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float images [B, C, H, W] -> normalised float32 input."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, not {type(images).__name__}")
        if images.dim() != 4 or tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"images must have shape [B, {', '.join(map(str, self.input_shape))}], "
                             f"not {list(images.shape)}")
        if images.dtype == torch.uint8:
            x = images.float() / 255.0
        elif images.is_floating_point():
            x = images.float()
        else:
            raise TypeError(f"images must be uint8 or floating point, not {images.dtype}")
        return (x - self._input_mean) / self._input_std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images)[0]

    def run(self, images: torch.Tensor, record: bool = False):
        """(logits [B, classes], {lif name: spikes s [T, B, ...]} if `record` else {})."""
        # Layers before the first LIF see the same input at every step: compute them once on a
        # time axis of length 1 and expand it at the first LIF (same result, T times cheaper).
        h = self.prepare_input(images).unsqueeze(0)
        spikes = {}
        for name in self._sequence:
            layer = getattr(self, name)
            if isinstance(layer, ConvertedNeuron) and h.shape[0] == 1 and self.timesteps > 1:
                h = h.expand(self.timesteps, *h.shape[1:])
            if isinstance(layer, ConvertedNeuron) and record:
                s, amplitude = layer.spikes(h)
                spikes[name] = s.detach()
                h = s * amplitude
                continue
            if isinstance(layer, LIF):
                if h.shape[0] == 1 and self.timesteps > 1:
                    h = h.expand(self.timesteps, *h.shape[1:])
                if record:
                    s = layer.spikes(h)
                    spikes[name] = s.detach()
                    h = s if layer.amplitude is None else layer.amplitude * s
                    continue
            h = layer(h)
        return h.mean(0), spikes

    def lif_layers(self) -> dict[str, LIF]:
        """Every LIF layer by name, in order."""
        return {name: m for name, m in self.named_modules() if isinstance(m, LIF)}


def build_model(arch: dict, surrogate_function: "str | Surrogate | None" = None,
                detach_reset: bool = False) -> SpikingNet:
    """A SpikingNet from an architecture description; raises ArchError (a ValueError) if invalid."""
    return SpikingNet(arch, surrogate_function=surrogate_function, detach_reset=detach_reset)
