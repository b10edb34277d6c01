"""Ready-made architectures (plain dicts, no torch), chosen to be cheap in hardware.

The MNIST net uses direct encoding with no mean/std normalisation (the first layer sees
uint8/255, so the compiler folds 1/255 into its weights exactly), a conv+BN stem, a ternary
or binary LIF after every conv+BN, and stride-2 convolutions instead of pooling: pooling
would multiply the fan-out of every spike in hardware (SPEC §2.5).
"""
from __future__ import annotations

from .arch import NEURONS, normalize_arch


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, not {value!r}")


def mnist_arch(neuron: str = "ternary", timesteps: int = 2, width: int = 32, amplitude: bool = True,
               tau_shift: int = 2, v_threshold: float = 1.0) -> dict:
    """conv(1→w, s1) → conv(w→2w, s2) → conv(2w→2w, s2), each + BN + LIF, then a linear readout.

    Neurons per image: w·784 + 2w·196 + 2w·49 (w = 32: 40,768), all 3×3 kernels with padding 1.
    """
    if neuron not in NEURONS:
        raise ValueError(f"neuron must be one of {list(NEURONS)}, not {neuron!r}")
    _check_positive_int("timesteps", timesteps)
    _check_positive_int("width", width)
    if not isinstance(amplitude, bool):
        raise TypeError(f"amplitude must be a bool, not {amplitude!r}")
    lif = {"type": "lif", "neuron": neuron, "tau_shift": tau_shift, "v_threshold": v_threshold,
           "amplitude": amplitude, "mpbn": False}
    layers = []
    channels = [1, width, 2 * width, 2 * width]
    strides = [1, 2, 2]
    for i, stride in enumerate(strides, start=1):
        layers += [
            {"name": f"conv{i}", "type": "conv2d", "in_channels": channels[i - 1], "out_channels": channels[i],
             "kernel_size": 3, "stride": stride, "padding": 1, "bias": False},
            {"name": f"bn{i}", "type": "batchnorm2d", "num_features": channels[i], "eps": 1e-5},
            {"name": f"lif{i}", **lif},
        ]
    layers += [
        {"name": "flatten", "type": "flatten"},
        {"name": "fc", "type": "linear", "in_features": channels[-1] * 7 * 7, "out_features": 10, "bias": True},
    ]
    return normalize_arch({"input_shape": [1, 28, 28], "timesteps": timesteps,
                           "input_normalization": None, "layers": layers})
