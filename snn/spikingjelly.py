"""SpikingJelly 2 models -> Tern checkpoints, with the neuron mapping stated exactly (docs/interop.md).

    checkpoint_from_spikingjelly(net, input_shape=[1, 28, 28], timesteps=2) -> checkpoint dict

`net` is a torch.nn.Sequential of SpikingJelly (or plain PyTorch) layers: Conv2d, Linear,
BatchNorm2d/1d, AvgPool2d, Flatten, and neurons. The input is pixel/255 (ToTensor), the same
at every step. Neuron mapping (SpikingJelly fires on H ≥ V_th; Tern on u ≥ θ = V_th/2):

| SpikingJelly                                          | Tern lif                                  |
|-------------------------------------------------------|-------------------------------------------|
| TernaryLIFNode(tau, decay_input=False, v_reset=0.0)   | ternary, tau_shift k, v_threshold = 2·V_th |
| LIFNode(tau, decay_input=False, v_reset=0.0)          | binary,  tau_shift k, v_threshold = 2·V_th |
| TernaryIFNode / IFNode(v_reset=0.0)                   | the same with k = 0                       |

where 1 − 1/tau = 2^−k (tau = 4/3: k = 2, the paper's 0.25). decay_input=True scales the input
by 1/tau, which folds into the preceding conv/linear (it must be directly before the neuron).
Anything else (soft reset, v_reset ≠ 0, other tau, other modules) is refused with a ValueError
naming the module.
"""
from __future__ import annotations

import math

import numpy as np

from .checkpoint import validate_checkpoint

# 1 − 1/tau is a float; within this relative distance of 2^−k it is taken as 2^−k
POWER_OF_TWO_TOLERANCE = 1e-9


class SpikingJellyError(ValueError):
    """A SpikingJelly module with no exact Tern equivalent."""


def leak_shift_from_sj_tau(tau: float, where: str) -> int:
    """k with 1 − 1/tau = 2^−k (SpikingJelly's tau is a time constant in steps)."""
    if not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 1:
        raise SpikingJellyError(f"{where}: tau must be a finite number > 1, not {tau!r}")
    beta = 1.0 - 1.0 / tau
    k = max(1, round(-math.log2(beta)))
    if abs(beta - 2.0 ** -k) > POWER_OF_TWO_TOLERANCE * 2.0 ** -k:
        raise SpikingJellyError(f"{where}: 1 − 1/tau = {beta:.9g} is not a power of two (nearest 2^-{k}: "
                                f"tau = {1 / (1 - 2.0 ** -k):.9g}); Tern's leak is a shift")
    return k


def _neuron_layer(module, name: str) -> tuple[dict, float]:
    """(lif dict, input gain) of a SpikingJelly neuron."""
    from spikingjelly.activation_based import neuron as sj
    kind = type(module).__name__
    where = f"module {name!r} ({kind})"
    ternary = isinstance(module, (sj.TernaryLIFNode, sj.TernaryIFNode))
    if not isinstance(module, (sj.TernaryLIFNode, sj.TernaryIFNode, sj.LIFNode, sj.IFNode)) or \
            type(module) not in (sj.TernaryLIFNode, sj.TernaryIFNode, sj.LIFNode, sj.IFNode):
        raise SpikingJellyError(f"{where}: only IFNode, LIFNode, TernaryIFNode and TernaryLIFNode map onto Tern")
    if module.v_reset is None or module.v_reset != 0.0:
        raise SpikingJellyError(f"{where}: v_reset must be 0.0 (hard reset to 0), not {module.v_reset!r}")
    v_th = float(module.v_threshold)
    if not v_th > 0:
        raise SpikingJellyError(f"{where}: v_threshold must be > 0, not {v_th!r}")
    gain = 1.0
    k = 0
    if isinstance(module, (sj.TernaryLIFNode, sj.LIFNode)):
        k = leak_shift_from_sj_tau(float(module.tau), where)
        if module.decay_input:
            gain = 1.0 - 2.0 ** -k  # = 1/tau
    layer = {"name": name, "type": "lif", "neuron": "ternary" if ternary else "binary", "tau_shift": k,
             "v_threshold": 2.0 * v_th, "amplitude": False, "mpbn": False, "mpbn_eps": 1e-5}
    return layer, gain


def checkpoint_from_spikingjelly(net, input_shape=(1, 28, 28), timesteps: int = 2, meta: dict | None = None) -> dict:
    """A validated Tern checkpoint dict equivalent to a SpikingJelly Sequential (see the module doc)."""
    import torch
    from torch import nn

    if not isinstance(net, nn.Sequential):
        raise SpikingJellyError(f"the model must be a torch.nn.Sequential, not {type(net).__name__}")
    layers: list[dict] = []
    state: dict = {}
    for index, module in enumerate(net):
        name = f"l{index}_{type(module).__name__.lower()}"
        where = f"module {index} ({type(module).__name__})"
        params = {k: v.detach().to(torch.float64).clone() for k, v in module.state_dict().items()
                  if k != "num_batches_tracked"}
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size
            if (module.groups != 1 or module.dilation != (1, 1) or k[0] != k[1] or module.stride[0] != module.stride[1]
                    or not isinstance(module.padding, tuple) or module.padding[0] != module.padding[1]
                    or module.padding_mode != "zeros"):
                raise SpikingJellyError(f"{where}: only square kernels, equal strides, symmetric zero padding, "
                                        f"groups = 1 and dilation = 1 map onto Tern's conv2d")
            layers.append({"name": name, "type": "conv2d", "in_channels": module.in_channels,
                           "out_channels": module.out_channels, "kernel_size": k[0], "stride": module.stride[0],
                           "padding": module.padding[0], "bias": module.bias is not None})
        elif isinstance(module, nn.Linear):
            layers.append({"name": name, "type": "linear", "in_features": module.in_features,
                           "out_features": module.out_features, "bias": module.bias is not None})
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if not module.affine or not module.track_running_stats:
                raise SpikingJellyError(f"{where}: BatchNorm needs affine=True and running statistics")
            layers.append({"name": name, "type": "batchnorm2d" if isinstance(module, nn.BatchNorm2d) else "batchnorm1d",
                           "num_features": module.num_features, "eps": float(module.eps)})
        elif isinstance(module, nn.AvgPool2d):
            ks = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            stride = module.stride if isinstance(module.stride, int) else module.stride[0]
            if module.kernel_size not in (ks, (ks, ks)) or stride != ks or module.padding not in (0, (0, 0)) \
                    or module.ceil_mode:
                raise SpikingJellyError(f"{where}: only square, non-overlapping, unpadded average pooling maps")
            layers.append({"name": name, "type": "avgpool2d", "kernel_size": ks})
        elif isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                raise SpikingJellyError(f"{where}: Flatten must flatten every dimension after the batch")
            layers.append({"name": name, "type": "flatten"})
        elif type(module).__module__.startswith("spikingjelly") and hasattr(module, "v_threshold"):
            layer, gain = _neuron_layer(module, name)
            if gain != 1.0:
                prev = layers[-1] if layers else None
                if prev is None or prev["type"] not in ("conv2d", "linear", "batchnorm2d", "batchnorm1d"):
                    raise SpikingJellyError(f"{where}: decay_input=True scales the input by 1/tau, which must fold "
                                            f"into a conv/linear/batchnorm directly before the neuron")
                keys = ["weight", "bias"] if prev["type"].startswith("batchnorm") else \
                    ["weight"] + (["bias"] if prev["bias"] else [])
                for key in keys:
                    state[f"{prev['name']}.{key}"] = state[f"{prev['name']}.{key}"] * gain
            layers.append(layer)
            params = {}
        else:
            raise SpikingJellyError(f"{where}: no Tern layer for it; supported: Conv2d, Linear, BatchNorm2d/1d, "
                                    f"AvgPool2d, Flatten, IFNode, LIFNode, TernaryIFNode, TernaryLIFNode")
        state.update({f"{name}.{k}": v for k, v in params.items()})
    ckpt = {"format": "tern-checkpoint", "version": 1,
            "arch": {"input_shape": list(input_shape), "timesteps": int(timesteps), "input_normalization": None,
                     "layers": layers},
            "state_dict": state,
            "meta": {"source": "spikingjelly", "timesteps": int(timesteps),
                     "neuron": next((l["neuron"] for l in layers if l["type"] == "lif"), None), **(meta or {})}}
    return validate_checkpoint(ckpt, source="SpikingJelly model")
