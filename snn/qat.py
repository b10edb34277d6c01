"""Quantisation-aware training: the forward pass of the model that gen will quantise.

gen folds BatchNorm, the input scale 1/255 and each layer's spike amplitude into the weights
(SPEC §2), then picks per output channel the largest power-of-two scale 2^e that keeps
every |round(W·2^e)| <= 2^(wbits−1) − 1 (one e for all readout rows) and rounds weights and
bias to that grid (SPEC §3, gen/frontend/quantise.py). `fake_quant_forward` computes exactly that
model in float: the FOLDED weights and biases are rounded to the same grid, with a
straight-through estimator (round's gradient taken as 1) so that the optimiser moves the
float parameters while seeing the quantised network. Nothing is stored differently: the
checkpoint stays a normal float checkpoint, and gen quantises it to these same numbers.

BatchNorm folds with its running statistics, as gen folds it, so this forward is meant for
a phase in which the statistics are frozen (BN modules in eval mode; γ and β still learn).

Only chain networks are supported (snn.zoo.mnist_arch and the like): conv2d/linear
(+ batchnorm) + lif layers, flatten, and a linear (+ batchnorm1d) readout, no input
normalisation, no MPBN.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .neuron import LIF

INPUT_SCALE = 255.0  # the first layer sees x = pixel / 255; gen folds 1/255 into its weights


def _stages(model) -> list[dict]:
    """The chain as stages {weighted, bn, lif} (lif None for the readout); refuses anything else."""
    arch = model.arch
    if arch["input_normalization"] is not None:
        raise ValueError("quantisation-aware training needs a model without input normalisation")
    stages, current = [], None
    for layer in arch["layers"]:
        kind, name = layer["type"], layer["name"]
        if kind in ("conv2d", "linear"):
            if current is not None:
                raise ValueError(f"quantisation-aware training: layer {name!r} follows a current layer "
                                 f"without a lif in between")
            current = {"weighted": getattr(model, name), "kind": kind, "bn": None, "lif": None}
        elif kind in ("batchnorm2d", "batchnorm1d") and current is not None and current["bn"] is None:
            current["bn"] = getattr(model, name)
        elif kind == "lif" and current is not None:
            if layer["mpbn"]:
                raise ValueError(f"quantisation-aware training does not support MPBN (layer {name!r})")
            current["lif"] = getattr(model, name)
            stages.append(current)
            current = None
        elif kind == "flatten" and current is None:
            continue
        else:
            raise ValueError(f"quantisation-aware training supports chain networks only (conv2d/linear, "
                             f"batchnorm, lif, flatten, linear readout), not layer {name!r} of type {kind!r} here")
    if current is None or current["kind"] != "linear" or not stages:
        raise ValueError("quantisation-aware training needs spiking layers and a linear readout at the end")
    stages.append(current)
    return stages


def folded_parameters(stage: dict, input_gain) -> tuple[torch.Tensor, torch.Tensor]:
    """(W′, b′) as gen folds them: BN with running statistics (§2.1), then `input_gain`
    (1/255 for the first layer, the previous layer's amplitude otherwise, §2.2/§2.3)."""
    layer, bn = stage["weighted"], stage["bn"]
    weight = layer.weight
    bias = layer.bias if layer.bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype)
    if bn is not None:
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = weight * g.reshape((-1,) + (1,) * (weight.dim() - 1))
        bias = bias * g + (bn.bias - bn.running_mean * g)
    return weight * input_gain, bias


def grid_exponents(weight: torch.Tensor, wbits: int, readout: bool, min_exp: int | None) -> torch.Tensor:
    """gen.frontend.quantise's scale exponents: per output channel the largest e with
    round(max|W|·2^e) <= 2^(wbits−1) − 1; the readout takes the smallest over its rows. A channel
    without weights takes the layer's largest (and `min_exp`, the exponent that keeps θ exact)."""
    qmax = 2 ** (wbits - 1) - 1
    m = weight.detach().abs().reshape(weight.shape[0], -1).amax(1).double()
    zero = m == 0
    safe = torch.where(zero, torch.ones_like(m), m)
    e = torch.floor(math.log2(qmax) - torch.log2(safe))
    for _ in range(3):  # the estimate is off by at most one; round half to even as numpy does
        e = torch.where(torch.round(safe * 2.0 ** (e + 1)) <= qmax, e + 1, e)
        e = torch.where(torch.round(safe * 2.0 ** e) > qmax, e - 1, e)
    if readout:
        common = e[~zero].min() if bool((~zero).any()) else torch.tensor(0.0, dtype=e.dtype)
        return torch.full_like(e, float(common))
    if bool(zero.any()):
        fill = e[~zero].max() if bool((~zero).any()) else torch.tensor(0.0, dtype=e.dtype)
        if min_exp is not None:
            fill = torch.clamp(fill, min=min_exp)
        e = torch.where(zero, fill, e)
    return e


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward (half to even, like numpy), identity gradient."""
    return x + (torch.round(x) - x).detach()


def fake_quantise(values: torch.Tensor, exps: torch.Tensor) -> torch.Tensor:
    """round(v·2^e)·2^−e per output channel (dimension 0), with a straight-through gradient."""
    scale = (2.0 ** exps).to(values.dtype).reshape((-1,) + (1,) * (values.dim() - 1))
    return round_ste(values * scale) / scale


def theta_exponent(lif: LIF) -> int | None:
    """The smallest e making θ·2^e an integer (gen keeps θ exact: e may not fall below it)."""
    for e in range(-64, 17):
        scaled = math.ldexp(lif.theta, e)
        if scaled == round(scaled):
            return e
    return None


def quantised_layers(model, wbits: int) -> list[dict]:
    """Per stage: the fake-quantised folded weight and bias, and the exponents (tests compare
    them with gen's integer IR). Carries gradients to the float parameters."""
    out, gain = [], 1.0 / INPUT_SCALE
    for stage in _stages(model):
        weight, bias = folded_parameters(stage, gain)
        lif = stage["lif"]
        exps = grid_exponents(weight, wbits, readout=lif is None,
                              min_exp=None if lif is None else theta_exponent(lif))
        out.append({**stage, "weight": fake_quantise(weight, exps), "bias": fake_quantise(bias, exps),
                    "exps": exps})
        if lif is not None:
            gain = lif.amplitude if lif.amplitude is not None else 1.0
    return out


def fake_quant_forward(model, images: torch.Tensor, wbits: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(logits [B, classes], spikes s [T, B, ...] of each spiking layer, with gradients) of the
    fake-quantised folded model: what gen's golden model computes, in float."""
    h = model.prepare_input(images) * INPUT_SCALE       # raw pixels: 1/255 is in the first weights
    if images.dtype == torch.uint8:  # the pixels themselves: (p/255)·255 in float32 is not always p
        h = images.to(next(model.parameters()).dtype)
    h = h.unsqueeze(0)                                    # time axis of length 1 until the first lif
    spikes = []
    for stage in quantised_layers(model, wbits):
        layer = stage["weighted"]
        flat = h.flatten(0, 1)
        if stage["kind"] == "conv2d":
            current = F.conv2d(flat, stage["weight"], stage["bias"], stride=layer.stride, padding=layer.padding)
        else:
            current = F.linear(flat.flatten(1), stage["weight"], stage["bias"])
        current = current.unflatten(0, h.shape[:2])
        if stage["lif"] is None:
            return current.mean(0), spikes
        if current.shape[0] == 1 and model.timesteps > 1:
            current = current.expand(model.timesteps, *current.shape[1:])
        h = stage["lif"].spikes(current)                  # s, not a·s: the amplitude is in the next weights
        spikes.append(h)
    raise AssertionError("unreachable: _stages ends with the readout")


class FakeQuantised(nn.Module):
    """A view of a model whose forward is `fake_quant_forward` (for snn.evaluate.accuracy)."""

    def __init__(self, model, wbits: int):
        super().__init__()
        self.model = model
        self.wbits = wbits

    @property
    def arch(self) -> dict:
        return self.model.arch

    def forward(self, images):
        return fake_quant_forward(self.model, images, self.wbits)[0]


def freeze_batchnorm(model) -> None:
    """BatchNorm on running statistics (eval mode), as gen folds it; γ and β still train."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
