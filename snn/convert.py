"""ANN -> SNN conversion (docs/msat.md §2): fold BN, calibrate λ per layer, normalise, write.

    convert(ann_ckpt, method="msat"|"if-subtract", timesteps, percentile, calibration_images)
        -> (arch, state_dict, conversion facts)

The ANN is a chain of conv2d/linear (+ batchnorm) + relu, a flatten, and a linear readout
(what `python -m snn train --neuron relu` trains). Calibration reads training images only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .arch import ArchError, LAYER_FIELDS, normalize_arch

METHODS = ("msat", "if-subtract")
DEFAULT_PERCENTILE = 0.9999
DEFAULT_CALIBRATION_IMAGES = 512  # the authors' one batch of 512 training images
CALIBRATION_BATCH = 128


class ConversionError(ValueError):
    """An ANN that this converter cannot turn into an SNN (the message names the layer)."""


@dataclass
class Stage:
    """One folded current layer (conv or linear, BN folded in) and whether a ReLU follows it."""
    name: str            # the conv/linear layer's name
    kind: str            # "conv2d" | "linear"
    weight: torch.Tensor  # float64
    bias: torch.Tensor
    stride: int = 1
    padding: int = 0
    relu: str | None = None   # the relu layer's name, None for the readout
    flatten_before: str | None = None


def _fold_bn(weight, bias, state, bn: dict):
    """SPEC §2.1: W' = W·g, b' = (b − μ)·g + β, g = γ/√(σ² + ε)."""
    p = bn["name"]
    g = state[f"{p}.weight"].double() / torch.sqrt(state[f"{p}.running_var"].double() + bn["eps"])
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight * g.view(shape), (bias - state[f"{p}.running_mean"].double()) * g + state[f"{p}.bias"].double()


def ann_stages(arch: dict, state: dict) -> list[Stage]:
    """The ANN as folded stages; raises ConversionError naming the first layer it cannot convert."""
    layers = arch["layers"]
    if not any(layer["type"] == "relu" for layer in layers):
        kinds = sorted({layer["type"] for layer in layers})
        raise ConversionError(f"not an ANN: no 'relu' layer (layer types {kinds}); train one with "
                              "python -m snn train --neuron relu")
    stages: list[Stage] = []
    pending_flatten = None
    i = 0
    while i < len(layers):
        layer = layers[i]
        kind, name = layer["type"], layer["name"]
        if kind == "flatten":
            pending_flatten = name
            i += 1
            continue
        if kind not in ("conv2d", "linear"):
            what = {"relu": "a relu must follow a conv2d or linear (+ batchnorm)"}.get(
                kind, f"a {kind} layer is not converted (supported: conv2d, linear, batchnorm, relu, flatten)")
            raise ConversionError(f"layer {name!r}: {what}")
        weight = state[f"{name}.weight"].double()
        out = weight.shape[0]
        bias = state[f"{name}.bias"].double() if layer["bias"] else torch.zeros(out, dtype=torch.float64)
        stage = Stage(name, kind, weight, bias, layer.get("stride", 1), layer.get("padding", 0),
                      flatten_before=pending_flatten)
        pending_flatten = None
        i += 1
        if i < len(layers) and layers[i]["type"] in ("batchnorm2d", "batchnorm1d"):
            stage.weight, stage.bias = _fold_bn(stage.weight, stage.bias, state, layers[i])
            i += 1
        if i < len(layers) and layers[i]["type"] == "relu":
            stage.relu = layers[i]["name"]
            i += 1
        elif i < len(layers):
            nxt = layers[i]
            raise ConversionError(f"layer {nxt['name']!r}: a {nxt['type']} after {name!r} is not converted "
                                  "(each conv2d/linear must be followed by batchnorm and/or relu)")
        stages.append(stage)
    if stages[-1].relu is not None or stages[-1].kind != "linear":
        raise ConversionError(f"layer {stages[-1].name!r}: the last layer must be a linear readout without relu")
    for stage in stages[:-1]:
        if stage.relu is None:
            raise ConversionError(f"layer {stage.name!r}: needs a relu after it (only the readout has none)")
    return stages


def _apply(stage: Stage, x: torch.Tensor) -> torch.Tensor:
    if stage.flatten_before is not None or (stage.kind == "linear" and x.dim() > 2):
        x = x.flatten(1)
    if stage.kind == "conv2d":
        return F.conv2d(x, stage.weight, stage.bias, stride=stage.stride, padding=stage.padding)
    return F.linear(x, stage.weight, stage.bias)


def _quantile(values: torch.Tensor, p: float) -> float:
    """Element ⌊n·p⌋ − 1 (at least the first) of the sorted values: the authors' HookScale."""
    flat = values.reshape(-1)
    k = max(1, math.floor(flat.numel() * p))
    return float(torch.kthvalue(flat, k).values)


def calibrate(stages: list[Stage], images: np.ndarray, percentile: float, progress=None) -> list[float]:
    """λ of every relu stage: the p-quantile of its ReLU output over `images` (uint8 [N,C,H,W])."""
    x_all = torch.from_numpy(np.asarray(images)).double() / 255.0
    outputs: list[list[torch.Tensor]] = [[] for _ in stages[:-1]]
    for lo in range(0, len(x_all), CALIBRATION_BATCH):
        h = x_all[lo:lo + CALIBRATION_BATCH]
        for j, stage in enumerate(stages[:-1]):
            h = torch.relu(_apply(stage, h))
            outputs[j].append(h.float())
        if progress is not None:
            progress(min(CALIBRATION_BATCH, len(x_all) - lo))
    lambdas = []
    for stage, parts in zip(stages[:-1], outputs):
        lam = _quantile(torch.cat(parts), percentile)
        if not lam > 0 or not math.isfinite(lam):
            raise ConversionError(f"layer {stage.relu!r}: its ReLU output is 0 on every calibration image "
                                  f"(λ = {lam}); it cannot be normalised")
        lambdas.append(lam)
    return lambdas


def neuron_layer(method: str, name: str, lam: float, msat_fields: dict | None = None) -> dict:
    """The layer dict of one converted neuron, every field explicit."""
    if method == "if-subtract":
        return {"name": name, "type": "if_subtract", "lambda": lam, "signed": True}
    fields = {k: v for k, v in LAYER_FIELDS["msat"].items() if k != "lambda"}
    fields.update(msat_fields or {})
    return {"name": name, "type": "msat", "lambda": lam, **fields}


def convert(ckpt: dict, method: str, timesteps: int, percentile: float, images: np.ndarray,
            msat_fields: dict | None = None, progress=None) -> tuple[dict, dict, dict]:
    """(arch, state_dict, facts) of the converted SNN; `images` are the calibration images."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, not {method!r}")
    if not (isinstance(percentile, (int, float)) and 0 < percentile <= 1):
        raise ValueError(f"percentile must be in (0, 1], not {percentile!r}")
    arch = ckpt["arch"]
    stages = ann_stages(arch, ckpt["state_dict"])
    lambdas = calibrate(stages, images, percentile, progress)
    layers, state = [], {}
    previous = 1.0  # λ_0: the pixels in [0, 1]
    for j, stage in enumerate(stages):
        last = stage.relu is None
        scale = previous if last else previous / lambdas[j]
        weight = (stage.weight * scale).float()
        bias = (stage.bias if last else stage.bias / lambdas[j]).float()
        if stage.flatten_before is not None:
            layers.append({"name": stage.flatten_before, "type": "flatten"})
        if stage.kind == "conv2d":
            o, c, k, _ = weight.shape
            layers.append({"name": stage.name, "type": "conv2d", "in_channels": c, "out_channels": o,
                           "kernel_size": k, "stride": stage.stride, "padding": stage.padding, "bias": True})
        else:
            layers.append({"name": stage.name, "type": "linear", "in_features": weight.shape[1],
                           "out_features": weight.shape[0], "bias": True})
        state[f"{stage.name}.weight"] = weight.contiguous()
        state[f"{stage.name}.bias"] = bias.contiguous()
        if not last:
            layers.append(neuron_layer(method, stage.relu, lambdas[j], msat_fields))
            previous = lambdas[j]
    try:
        new_arch = normalize_arch({"input_shape": arch["input_shape"], "timesteps": timesteps,
                                   "input_normalization": None, "layers": layers})
    except ArchError as exc:
        raise ConversionError(str(exc)) from None
    if arch.get("input_normalization") is not None:
        raise ConversionError("input_normalization is not converted yet (the zoo ANNs have none)")
    facts = {"method": method, "percentile": percentile, "calibration_images": int(len(images)),
             "lambda": {stage.relu: lam for stage, lam in zip(stages, lambdas)}}
    return new_arch, state, facts


def per_step_logits(model, images, batch_size: int = 250) -> torch.Tensor:
    """Cumulative readout Σ_{t'≤t} (W·o + b) for every t: float [N, T, K] (the protocol's curves)."""
    from .msat import ConvertedNeuron

    out = []
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            h = model.prepare_input(torch.as_tensor(images[lo:lo + batch_size])).unsqueeze(0)
            for name in model._sequence:
                layer = getattr(model, name)
                if isinstance(layer, ConvertedNeuron) and h.shape[0] == 1:
                    h = h.expand(model.timesteps, *h.shape[1:])
                h = layer(h)
            out.append(h.cumsum(0).transpose(0, 1))
    return torch.cat(out)
