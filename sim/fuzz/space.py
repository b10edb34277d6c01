"""The model space of docs/checkpoint.md, as recipes the fuzzer draws, shrinks and replays.

    recipe = draw_recipe(rng, profile="ci")      # a JSON-able dict: shapes, neurons, options
    ckpt = checkpoint(recipe)                    # the checkpoint dict it stands for (torch tensors)

A recipe is small and readable on purpose: the shrinker edits it field by field (fewer
layers, fewer channels, smaller maps, T = 1, ...) and a corpus entry shows at a glance what
made a model fail. Its weights come from `recipe["seed"]`, so one recipe is one checkpoint.

What a recipe can hold (the checkpoint format's whole documented space, docs/checkpoint.md):
  input      1–3 channels, 1×1 to 32×32, square or not; optional input normalisation
  T          1–8; wbits 8 or 4 (meta "wbits", as `snn train --wbits 4` writes)
  stages     1–5 spiking stages, each followed by its neuron:
             conv      kernel 1–7 (even ones too), stride 1–3, padding 0..k//2, 1–64 channels,
                       optional bias and BatchNorm, optional 2×2 average pool after the neuron
             residual  identity (body keeps the shape) or 1×1 projection shortcut (stride 1–2,
                       more channels), one or two convs in the body
             linear    1–64 features, optional BatchNorm1d
  neuron     per stage: lif ternary/binary (tau_shift, v_threshold, amplitude, MPBN), or the
             converted if_subtract / msat (ladder) neurons of `snn convert`
  readout    linear to 2–10 classes, optional BatchNorm1d
  weights    normal, or all at one magnitude (every weight quantises to ±qmax)
  firing     normal, rare (thresholds ×16) or dense (thresholds ÷16)
  build      the plan the fuzzer forces: default, all event, all dense where the shape
             allows, or a random mix, with random lanes
"""
from __future__ import annotations

import copy
import math

import numpy as np

PROFILES = {
    # ci: small enough that a model builds and simulates in seconds; still every feature.
    "ci": {"side": 12, "channels": 8, "features": 24, "stages": 3, "timesteps": 4},
    # full: the whole documented range of the issue (maps to 32×32, 64 channels, T to 8).
    "full": {"side": 32, "channels": 64, "features": 64, "stages": 5, "timesteps": 8},
}
NEURON_KINDS = ("ternary", "binary", "if_subtract", "msat")
PLANS = ("default", "event", "dense", "mixed")
FIRING = {"normal": 1.0, "rare": 16.0, "dense": 1 / 16}
V_THRESHOLDS = (0.5, 0.75, 1.0, 2.0)


def _small(rng, top: int, bias: float = 2.0) -> int:
    """An int in 1..top, small values more likely (a fuzzer's best models are small)."""
    return int(min(top, max(1, math.floor((top + 1) ** rng.random() ** bias))))


def _draw_neuron(rng, kind: str) -> dict:
    if kind in ("ternary", "binary"):
        return {"type": "lif", "neuron": kind, "tau_shift": int(rng.integers(0, 5)),
                "v_threshold": float(rng.choice(V_THRESHOLDS)), "amplitude": bool(rng.random() < 0.4),
                "mpbn": bool(rng.random() < 0.25)}
    if kind == "if_subtract":
        return {"type": "if_subtract", "signed": bool(rng.random() < 0.7)}
    return {"type": "msat", "ladder_steps": int(rng.integers(1, 6)), "half_start": bool(rng.random() < 0.5),
            "lut_half": int(rng.choice([4, 8, 32])), "d_bits": int(rng.integers(1, 5)),
            "x_bits": int(rng.integers(1, 5)), "use_dtt": True, "use_det": bool(rng.random() < 0.7)}


def _conv_stage(rng, shape, limits) -> tuple[dict, tuple[int, int, int]]:
    _, h, w = shape
    k = int(rng.integers(1, 8))
    padding = int(rng.integers(0, k // 2 + 1))
    # The kernel must fit the padded map: shrink it rather than give up on a small map.
    k = max(1, min(k, min(h, w) + 2 * padding))
    padding = min(padding, k // 2)
    stride = int(rng.choice([1, 1, 1, 2, 2, 3]))
    channels = _small(rng, limits["channels"])
    stage = {"op": "conv", "channels": channels, "kernel": k, "stride": stride, "padding": padding,
             "bias": bool(rng.random() < 0.7), "bn": bool(rng.random() < 0.5)}
    out = (channels, (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)
    if min(out[1:]) >= 2 and rng.random() < 0.2:
        stage["pool"] = 2
        out = (channels, out[1] // 2, out[2] // 2)
    return stage, out


def _residual_stage(rng, shape, limits) -> tuple[dict, tuple[int, int, int]]:
    c, h, w = shape
    projection = bool(rng.random() < 0.5)
    stride, channels = 1, c
    if projection:
        stride = int(rng.choice([1, 2])) if min(h, w) >= 2 else 1
        channels = min(limits["channels"], c + int(rng.integers(0, 3)))
    stage = {"op": "residual", "channels": channels, "stride": stride, "projection": projection,
             "two_convs": bool(rng.random() < 0.4), "bn": bool(rng.random() < 0.7)}
    return stage, (channels, (h - 1) // stride + 1, (w - 1) // stride + 1)


def draw_recipe(rng, profile: str = "ci") -> dict:
    """One random recipe of the model space (see the module doc)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    limits = PROFILES[profile]
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    side = limits["side"]
    h = _small(rng, side, 1.0)
    w = h if rng.random() < 0.6 else _small(rng, side, 1.0)
    shape = (int(rng.integers(1, 4)), h, w)
    recipe = {"seed": int(rng.integers(1 << 31)), "input_shape": list(shape),
              "timesteps": _small(rng, limits["timesteps"], 1.0), "wbits": 4 if rng.random() < 0.15 else 8,
              "normalization": bool(rng.random() < 0.3), "weights": "extreme" if rng.random() < 0.15 else "normal",
              "firing": str(rng.choice(list(FIRING), p=[0.7, 0.15, 0.15])), "stages": []}
    mixed = rng.random() < 0.2
    kind = str(rng.choice(NEURON_KINDS, p=[0.4, 0.3, 0.15, 0.15]))
    for _ in range(_small(rng, limits["stages"], 1.0)):
        spatial = len(shape) == 3
        roll = rng.random()
        # A residual block reads a spike map: not after a pool, which comes after the neuron.
        after_pool = bool(recipe["stages"]) and bool(recipe["stages"][-1].get("pool"))
        if spatial and recipe["stages"] and not after_pool and roll < 0.2:
            stage, shape = _residual_stage(rng, shape, limits)
        elif spatial and roll < 0.75:
            stage, shape = _conv_stage(rng, shape, limits)
        else:
            stage = {"op": "linear", "features": _small(rng, limits["features"]), "bn": bool(rng.random() < 0.4)}
            shape = (stage["features"],)
        stage_kind = str(rng.choice(NEURON_KINDS[:2])) if mixed and kind in NEURON_KINDS[:2] else kind
        stage["neuron"] = _draw_neuron(rng, stage_kind)
        recipe["stages"].append(stage)
    recipe["classes"] = int(rng.integers(2, 11))
    recipe["readout_bn"] = bool(rng.random() < 0.3)
    recipe["build"] = _draw_build(rng)
    return recipe


def _draw_build(rng) -> dict:
    plan = str(rng.choice(PLANS, p=[0.4, 0.2, 0.2, 0.2]))
    return {"plan": plan, "lanes": "random" if plan != "default" and rng.random() < 0.5 else "default",
            "backpressure": bool(rng.random() < 0.5), "seed": int(rng.integers(1 << 16))}


# --------------------------------------------------------------------------- recipe -> checkpoint


def stage_shapes(recipe: dict) -> list[tuple[int, ...]]:
    """The shape after each stage (its neuron's spike map), checked: a recipe the shrinker
    edited into an impossible shape raises ValueError."""
    shape = tuple(recipe["input_shape"])
    shapes = []
    for stage in recipe["stages"]:
        if stage["op"] == "linear":
            shape = (stage["features"],)
        elif len(shape) != 3:
            raise ValueError("a spatial stage after a linear one")
        elif stage["op"] == "conv":
            _, h, w = shape
            k, s, p = stage["kernel"], stage["stride"], stage["padding"]
            if h + 2 * p < k or w + 2 * p < k or p > k // 2:
                raise ValueError(f"kernel {k} with padding {p} does not fit {h}×{w}")
            shape = (stage["channels"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
            if stage.get("pool"):
                if min(shape[1:]) < stage["pool"]:
                    raise ValueError("pool larger than the map")
                shape = (shape[0], shape[1] // stage["pool"], shape[2] // stage["pool"])
        else:
            c, h, w = shape
            if not shapes or recipe["stages"][len(shapes) - 1].get("pool"):
                raise ValueError("a residual block must follow a neuron (not the input or a pool)")
            if not stage["projection"] and (stage["channels"] != c or stage["stride"] != 1):
                raise ValueError("an identity shortcut must keep the shape")
            s = stage["stride"]
            shape = (stage["channels"], (h - 1) // s + 1, (w - 1) // s + 1)
        shapes.append(shape)
    return shapes


class _Params:
    """The state_dict of a checkpoint being written, and how its weights are drawn."""

    def __init__(self, rng, extreme: bool):
        self.rng, self.extreme, self.state = rng, extreme, {}

    def put(self, key, array):
        import torch
        self.state[key] = torch.as_tensor(np.asarray(array, dtype=np.float32))

    def weight(self, key, shape, fan_in: int, gain: float = 1.5):
        scale = gain / math.sqrt(max(fan_in, 1))
        if self.extreme:     # one magnitude: every weight quantises to ±qmax
            self.put(key, scale * self.rng.choice([-1.0, 1.0], size=shape))
        else:
            self.put(key, self.rng.normal(0, scale, shape))

    def batchnorm(self, prefix, channels):
        self.put(f"{prefix}.weight", self.rng.uniform(0.5, 1.5, channels))
        self.put(f"{prefix}.bias", self.rng.normal(0, 0.2, channels))
        self.put(f"{prefix}.running_mean", self.rng.normal(0, 0.2, channels))
        self.put(f"{prefix}.running_var", self.rng.uniform(0.5, 2.0, channels))


def _conv(p: _Params, name, c_in, c_out, k, stride, padding, bias=True, gain=1.5):
    p.weight(f"{name}.weight", (c_out, c_in, k, k), c_in * k * k, gain)
    if bias:
        p.put(f"{name}.bias", p.rng.normal(0, 0.2, c_out))
    return {"name": name, "type": "conv2d", "in_channels": c_in, "out_channels": c_out, "kernel_size": k,
            "stride": stride, "padding": padding, "bias": bias}


def _bn(p: _Params, name, channels, kind="batchnorm2d"):
    p.batchnorm(name, channels)
    return {"name": name, "type": kind, "num_features": channels, "eps": 1e-5}


def _neuron(p: _Params, name, spec: dict, channels: int, firing: float) -> dict:
    if spec["type"] == "lif":
        layer = {"name": name, "type": "lif", "neuron": spec["neuron"], "tau_shift": spec["tau_shift"],
                 "v_threshold": spec["v_threshold"] * firing, "amplitude": spec["amplitude"],
                 "mpbn": spec["mpbn"], "mpbn_eps": 1e-5}
        if spec["amplitude"]:
            p.put(f"{name}.amplitude", np.float32(p.rng.choice([0.5, 0.75, 1.5, 2.0])))
        if spec["mpbn"]:
            p.batchnorm(f"{name}.mpbn", channels)
        return layer
    # Converted neurons hold weights already divided by λ: λ only records the calibration.
    # Their threshold is 1, so `firing` scales the weights that feed them instead (below).
    if spec["type"] == "if_subtract":
        return {"name": name, "type": "if_subtract", "lambda": 1.0, "signed": spec["signed"]}
    return {"name": name, "type": "msat", "lambda": 1.0, "rule": "ladder", "use_dtt": spec["use_dtt"],
            "use_det": spec["use_det"], "alpha": 0.3, "ka": 1.0, "ki": 1.0, "C": 5.0, "tau_mp": 0.2,
            "tau_rd": 0.1, "ladder_steps": spec["ladder_steps"], "d_bits": spec["d_bits"],
            "x_bits": spec["x_bits"], "lut_half": spec["lut_half"], "z_bits": 8, "half_start": spec["half_start"]}


def checkpoint(recipe: dict) -> dict:
    """The checkpoint dict (docs/checkpoint.md) of a recipe; raises ValueError for a recipe
    whose shapes do not fit (only an edited one can)."""
    shapes = stage_shapes(recipe)
    rng = np.random.default_rng(recipe["seed"])
    p = _Params(rng, recipe["weights"] == "extreme")
    firing = FIRING[recipe["firing"]]
    layers: list[dict] = []
    shape = tuple(recipe["input_shape"])
    for i, (stage, out) in enumerate(zip(recipe["stages"], shapes), start=1):
        # A converted neuron's threshold is fixed at 1: fire rarely or densely by the gain.
        gain = 1.5 / firing if stage["neuron"]["type"] != "lif" else 1.5
        if stage["op"] == "conv":
            layers.append(_conv(p, f"conv{i}", shape[0], stage["channels"], stage["kernel"], stage["stride"],
                                stage["padding"], stage["bias"], gain))
            if stage["bn"]:
                layers.append(_bn(p, f"bn{i}", stage["channels"]))
        elif stage["op"] == "linear":
            if len(shape) == 3:
                layers.append({"name": f"flat{i}", "type": "flatten"})
            f_in = int(np.prod(shape))
            p.weight(f"fc{i}.weight", (stage["features"], f_in), f_in, gain)
            p.put(f"fc{i}.bias", rng.normal(0, 0.2, stage["features"]))
            layers.append({"name": f"fc{i}", "type": "linear", "in_features": f_in,
                           "out_features": stage["features"], "bias": True})
            if stage["bn"]:
                layers.append(_bn(p, f"bn{i}", stage["features"], "batchnorm1d"))
        else:
            layers.append(_residual(p, i, stage, shape, firing))
        layers.append(_neuron(p, f"spk{i}", stage["neuron"], out[0], firing))
        if stage.get("pool"):
            layers.append({"name": f"pool{i}", "type": "avgpool2d", "kernel_size": stage["pool"]})
        shape = out
    if len(shape) == 3:
        layers.append({"name": "flat_out", "type": "flatten"})
    features = int(np.prod(shape))
    p.weight("readout.weight", (recipe["classes"], features), features, 1.0)
    p.put("readout.bias", rng.normal(0, 0.2, recipe["classes"]))
    layers.append({"name": "readout", "type": "linear", "in_features": features,
                   "out_features": recipe["classes"], "bias": True})
    if recipe["readout_bn"]:
        layers.append(_bn(p, "readout_bn", recipe["classes"], "batchnorm1d"))
    channels = recipe["input_shape"][0]
    norm = None
    if recipe["normalization"]:
        # mean = k/255 keeps a padded conv exactly foldable (SPEC §2.3); the hardware pads
        # with pixel 0 only (docs/limits.md, pad-pixels), so half the models use mean 0.
        # Its own stream: an edit of the shrinker (fewer channels, ...) must not change it.
        side = np.random.default_rng([recipe["seed"], 1])
        zero_mean = side.random() < 0.5
        norm = {"mean": [0.0 if zero_mean else float(side.integers(1, 256)) / 255 for _ in range(channels)],
                "std": [float(side.uniform(0.2, 0.5)) for _ in range(channels)]}
    arch = {"input_shape": list(recipe["input_shape"]), "timesteps": recipe["timesteps"],
            "input_normalization": norm, "layers": layers}
    meta = {"neuron": "fuzz", "timesteps": recipe["timesteps"], "fuzz_recipe": copy.deepcopy(recipe)}
    if recipe["wbits"] != 8:
        meta["wbits"] = recipe["wbits"]
    return {"format": "tern-checkpoint", "version": 1, "arch": arch, "state_dict": p.state, "meta": meta}


def _residual(p: _Params, i: int, stage: dict, shape, firing: float) -> dict:
    c, s, out = shape[0], stage["stride"], stage["channels"]
    body = [_conv(p, f"res{i}_conv1", c, out, 3, s, 1)]
    if stage["bn"]:
        body.append(_bn(p, f"res{i}_bn1", out))
    if stage["two_convs"]:
        body.append(_neuron(p, f"res{i}_spk", stage["neuron"], out, firing))
        body.append(_conv(p, f"res{i}_conv2", out, out, 3, 1, 1))
    shortcut = []
    if stage["projection"]:
        shortcut = [_conv(p, f"res{i}_proj", c, out, 1, s, 0, bias=bool(p.rng.random() < 0.5))]
        if stage["bn"]:
            shortcut.append(_bn(p, f"res{i}_proj_bn", out))
    return {"name": f"res{i}", "type": "residual", "body": body, "shortcut": shortcut}
