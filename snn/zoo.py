"""Ready-made architectures (plain dicts, no torch), chosen to be cheap in hardware.

The MNIST net uses direct encoding with no mean/std normalisation (the first layer sees
uint8/255, so the compiler folds 1/255 into its weights exactly), a conv+BN stem, a ternary
or binary LIF after every conv+BN, and stride-2 convolutions instead of pooling: pooling
would multiply the fan-out of every spike in hardware (SPEC §2.5).
"""
from __future__ import annotations

from .arch import NEURONS, normalize_arch


def _lif(neuron: str, amplitude: bool, tau_shift: int, v_threshold: float) -> dict:
    if neuron not in NEURONS:
        raise ValueError(f"neuron must be one of {list(NEURONS)}, not {neuron!r}")
    if not isinstance(amplitude, bool):
        raise TypeError(f"amplitude must be a bool, not {amplitude!r}")
    return {"type": "lif", "neuron": neuron, "tau_shift": tau_shift, "v_threshold": v_threshold,
            "amplitude": amplitude, "mpbn": False}


def _conv_bn(name: str, cin: int, cout: int, kernel: int, stride: int) -> list[dict]:
    """A bias-free conv (padding keeps the size at stride 1) and the BN that folds into it."""
    return [{"name": f"conv{name}", "type": "conv2d", "in_channels": cin, "out_channels": cout,
             "kernel_size": kernel, "stride": stride, "padding": kernel // 2, "bias": False},
            {"name": f"bn{name}", "type": "batchnorm2d", "num_features": cout, "eps": 1e-5}]


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, not {value!r}")


def mnist_arch(neuron: str = "ternary", timesteps: int = 2, width: int = 32, amplitude: bool = True,
               tau_shift: int = 2, v_threshold: float = 1.0, channels: tuple[int, int, int] | None = None) -> dict:
    """conv(1→w, s1) → conv(w→2w, s2) → conv(2w→2w, s2), each + BN + LIF, then a linear readout.

    Neurons per image: w·784 + 2w·196 + 2w·49 (w = 32: 40,768), all 3×3 kernels with padding 1.
    `channels` = (c1, c2, c3) sets the three convs' output channels instead (e.g. (16, 32, 32)).
    """
    if neuron not in (*NEURONS, "relu"):
        raise ValueError(f"neuron must be one of {[*NEURONS, 'relu']}, not {neuron!r}")
    _check_positive_int("timesteps", timesteps)
    _check_positive_int("width", width)
    if not isinstance(amplitude, bool):
        raise TypeError(f"amplitude must be a bool, not {amplitude!r}")
    # "relu": the same layers as an ANN, the source of ANN->SNN conversion (docs/msat.md).
    lif = {"type": "relu"} if neuron == "relu" else {
        "type": "lif", "neuron": neuron, "tau_shift": tau_shift, "v_threshold": v_threshold,
        "amplitude": amplitude, "mpbn": False}
    if channels is not None:
        if (not isinstance(channels, (tuple, list)) or len(channels) != 3
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels)):
            raise ValueError(f"channels must be three ints >= 1 (one per conv), not {channels!r}")
    layers = []
    channels = [1, *channels] if channels is not None else [1, width, 2 * width, 2 * width]
    strides = [1, 2, 2]
    for i, stride in enumerate(strides, start=1):
        layers += [
            {"name": f"conv{i}", "type": "conv2d", "in_channels": channels[i - 1], "out_channels": channels[i],
             "kernel_size": 3, "stride": stride, "padding": 1, "bias": False},
            {"name": f"bn{i}", "type": "batchnorm2d", "num_features": channels[i], "eps": 1e-5},
            {"name": f"{'relu' if neuron == 'relu' else 'lif'}{i}", **lif},
        ]
    layers += [
        {"name": "flatten", "type": "flatten"},
        {"name": "fc", "type": "linear", "in_features": channels[-1] * 7 * 7, "out_features": 10, "bias": True},
    ]
    return normalize_arch({"input_shape": [1, 28, 28], "timesteps": timesteps,
                           "input_normalization": None, "layers": layers})


def mnist_resnet_arch(neuron: str = "ternary", timesteps: int = 2, width: int = 16, amplitude: bool = True,
                      tau_shift: int = 2, v_threshold: float = 1.0) -> dict:
    """A small ResNet: two plain conv layers, then a block with an identity and one with a projection shortcut.

        conv1 (1→w, s1, 28×28) → conv2 (w→2w, s2, 14×14)                       each + BN + LIF
        res3: conv3a (2w→2w) + BN + LIF → conv3b (2w→2w) + BN, identity shortcut   → lif3 (14×14)
        res4: conv4a (2w→4w, s2) + BN + LIF → conv4b (4w→4w) + BN,
              shortcut conv4s (1×1, s2, 2w→4w) + BN                               → lif4 (7×7)
        linear readout (4w·49 → 10)

    3×3 kernels with padding 1 except the 1×1 shortcut. The blocks sit after the first stride so
    that the widest maps stay small: neurons per image are w·784 + 3·2w·196 + 2·4w·49
    (w = 16: 37,632, fewer than mnist_arch's 40,768 at width 32).
    """
    _check_positive_int("timesteps", timesteps)
    _check_positive_int("width", width)
    lif = _lif(neuron, amplitude, tau_shift, v_threshold)
    w1, w2, w4 = width, 2 * width, 4 * width
    layers = [
        *_conv_bn("1", 1, w1, 3, 1), {"name": "lif1", **lif},
        *_conv_bn("2", w1, w2, 3, 2), {"name": "lif2", **lif},
        {"name": "res3", "type": "residual",
         "body": [*_conv_bn("3a", w2, w2, 3, 1), {"name": "lif3a", **lif}, *_conv_bn("3b", w2, w2, 3, 1)],
         "shortcut": []},
        {"name": "lif3", **lif},
        {"name": "res4", "type": "residual",
         "body": [*_conv_bn("4a", w2, w4, 3, 2), {"name": "lif4a", **lif}, *_conv_bn("4b", w4, w4, 3, 1)],
         "shortcut": _conv_bn("4s", w2, w4, 1, 2)},
        {"name": "lif4", **lif},
        {"name": "flatten", "type": "flatten"},
        {"name": "fc", "type": "linear", "in_features": w4 * 7 * 7, "out_features": 10, "bias": True},
    ]
    return normalize_arch({"input_shape": [1, 28, 28], "timesteps": timesteps,
                           "input_normalization": None, "layers": layers})


# `python -m snn train --arch NAME`: the zoo's MNIST architectures and their default widths.
MNIST_ARCHS = {"chain": mnist_arch, "resnet": mnist_resnet_arch}
DEFAULT_WIDTHS = {"chain": 32, "resnet": 16}
