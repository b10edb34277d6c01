"""NIR graph (HDF5, PyPI `nir`) -> a Tern checkpoint dict, exactly or not at all (docs/interop.md).

    read_nir(path, **conventions) -> checkpoint dict (docs/checkpoint.md), validated by snn

The graph is mapped node by node onto Tern's layer dicts, and the result is an ordinary
in-memory checkpoint: the usual parser, folds and quantisation take it from there. Every
node or field that has no exact Tern equivalent is refused with a NirError naming the node,
the field and why. What NIR leaves to the producer (the time step dt, the IF input gain,
`>` or `≥` at the threshold, T, the input scale) comes from explicit arguments or the
graph's `tern.*` metadata, never from a guess.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snn.arch import ArchError
from snn.checkpoint import validate_checkpoint

from gen.errors import ModelError

# A time constant read from a file is a float: 1 − dt/τ counts as 2^−k when it is within this
# relative distance of it (a τ of 4/3·dt written in float64 gives 0.25 up to a few ulps).
POWER_OF_TWO_TOLERANCE = 1e-9
MAX_LEAK_SHIFT = 16
CONVENTIONS = {  # what each producer means by the fields NIR leaves open
    "spikingjelly": {"if_gain": "r_dt", "fire": "ge"},   # IF r = 1/dt; Heaviside(0) = 1 (fires on ≥)
    "snntorch": {"if_gain": "r", "fire": "gt"},          # r = 1; fires on mem > threshold
    "sinabs": {"if_gain": "r", "fire": "ge"},
    "nir": {"if_gain": "r_dt", "fire": "gt"},            # the NIR spec: Euler step, z = v > v_threshold
}


class NirError(ModelError):
    """A NIR graph (or a node of it) that Tern cannot import exactly."""


@dataclass(frozen=True)
class Conventions:
    dt: float
    if_gain: str          # "r_dt" (Euler: v += r·dt·I, SpikingJelly) or "r" (v += r·I, sinabs/snnTorch)
    fire: str             # "ge" (fires on v ≥ θ, as Tern) or "gt" (v > θ, the NIR spec)
    timesteps: int
    input_scale: float    # the graph's input = uint8 pixel × input_scale (1/255 or 1)


def _fail(node: str, kind: str, field: str | None, why: str):
    where = f"node {node!r} ({kind})" + (f" field {field!r}" if field else "")
    raise NirError(f"{where}: {why}")


def _meta(metadata: dict, key: str):
    value = metadata.get(key)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _parse_scale(value) -> float:
    if isinstance(value, str):
        text = value.strip()
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    return float(value)


def resolve_conventions(metadata: dict, convention=None, dt=None, if_gain=None, fire=None, timesteps=None,
                        input_scale=None) -> Conventions:
    """Explicit arguments first, then the graph's tern.* metadata; a missing one is an error."""
    preset = convention if convention is not None else _meta(metadata, "tern.convention")
    base = {}
    if preset is not None:
        if preset not in CONVENTIONS:
            raise NirError(f"convention must be one of {sorted(CONVENTIONS)}, not {preset!r}")
        base = CONVENTIONS[preset]
    values = {
        "dt": dt if dt is not None else _meta(metadata, "tern.dt"),
        "if_gain": if_gain or _meta(metadata, "tern.if_gain") or base.get("if_gain"),
        "fire": fire or _meta(metadata, "tern.fire") or base.get("fire"),
        "timesteps": timesteps if timesteps is not None else _meta(metadata, "tern.timesteps"),
        "input_scale": input_scale if input_scale is not None else _meta(metadata, "tern.input_scale"),
    }
    hints = {"dt": "the time step the producer used (SpikingJelly's exporter: its dt argument, 1e-4 by default)",
             "if_gain": "'r_dt' (IF adds r·dt·I: SpikingJelly) or 'r' (adds r·I: sinabs, snnTorch)",
             "fire": "'ge' (fires on v ≥ θ: SpikingJelly) or 'gt' (v > θ: the NIR spec, snnTorch)",
             "timesteps": "T, the number of steps each image is presented",
             "input_scale": "what the graph's input is: uint8 pixel × scale (1/255 or 1)"}
    for key, value in values.items():
        if value is None:
            raise NirError(f"the graph does not declare {key!r} and no option gives it: NIR leaves it to the "
                           f"producer and Tern does not guess it; give {hints[key]} (metadata 'tern.{key}' or "
                           f"the option --{key.replace('_', '-')})")
    try:
        dt_value, scale = float(values["dt"]), _parse_scale(values["input_scale"])
    except (TypeError, ValueError):
        raise NirError(f"dt and input_scale must be numbers, not {values['dt']!r} and "
                       f"{values['input_scale']!r}") from None
    if not math.isfinite(dt_value) or dt_value <= 0:
        raise NirError(f"dt must be a finite number > 0, not {values['dt']!r}")
    if values["if_gain"] not in ("r", "r_dt"):
        raise NirError(f"if_gain must be 'r' or 'r_dt', not {values['if_gain']!r}")
    if values["fire"] not in ("ge", "gt"):
        raise NirError(f"fire must be 'ge' or 'gt', not {values['fire']!r}")
    t = values["timesteps"]
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise NirError(f"timesteps must be an int >= 1, not {t!r}")
    if scale not in (1.0, 1 / 255):
        raise NirError(f"input_scale must be 1/255 (the graph takes pixel/255) or 1 (raw pixels), not {scale!r}: "
                       f"only those fold exactly into Tern's uint8 input")
    return Conventions(dt_value, values["if_gain"], values["fire"], int(t), scale)


# --------------------------------------------------------------------------- graph walking


def _successors(graph) -> tuple[dict, dict]:
    succ = {name: [] for name in graph.nodes}
    pred = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        if src not in succ or dst not in succ:
            raise NirError(f"edge {src!r} -> {dst!r} names a node that is not in the graph")
        succ[src].append(dst)
        pred[dst].append(src)
    return succ, pred


def _check_acyclic(graph, succ) -> None:
    state: dict[str, int] = {}

    def visit(name, path):
        state[name] = 1
        for nxt in succ[name]:
            if state.get(nxt) == 1:
                _fail(nxt, type(graph.nodes[nxt]).__name__, None,
                      f"the graph has a cycle ({name!r} -> {nxt!r}): recurrent connections have no Tern "
                      f"equivalent (layers are feed-forward)")
            if nxt not in state:
                visit(nxt, path)
        state[name] = 2

    for name in graph.nodes:
        if name not in state:
            visit(name, [])


def _is_projection(graph, chain: list[str]) -> bool:
    """A branch that is a Conv2d and Scales (which fold into it): a projection shortcut."""
    import nir
    return bool(chain) and isinstance(graph.nodes[chain[0]], nir.Conv2d) and \
        all(isinstance(graph.nodes[n], nir.Scale) for n in chain[1:])


def _end_of_branch(start: str, succ, pred, limit: int) -> tuple[list[str], str]:
    """Follow single-successor nodes from `start` until a node with several predecessors."""
    chain, node = [], start
    for _ in range(limit):
        if len(pred[node]) > 1:
            return chain, node
        chain.append(node)
        if len(succ[node]) != 1:
            return chain, None
        node = succ[node][0]
    return chain, None


# --------------------------------------------------------------------------- node mapping


def _uniform(node: str, kind: str, field: str, value) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        _fail(node, kind, field, f"must be finite, not {array!r}")
    first = float(array.reshape(-1)[0])
    if not np.all(array == first):
        _fail(node, kind, field, f"differs between neurons ({array.min():g}..{array.max():g}): a Tern lif has "
                                 f"one value per layer")
    return first


def _square(node: str, kind: str, field: str, value, allow_zero: bool = False) -> int:
    array = np.atleast_1d(np.asarray(value)).reshape(-1)
    if array.size not in (1, 2) or array[0] != array[-1]:
        _fail(node, kind, field, f"must be the same in both spatial dimensions, not {array.tolist()}")
    v = int(array[0])
    if v != array[0] or v < (0 if allow_zero else 1):
        _fail(node, kind, field, f"must be an int >= {0 if allow_zero else 1}, not {array.tolist()}")
    return v


def _leak_shift(node: str, kind: str, beta: float) -> int:
    """k with 1 − dt/τ = 2^−k (k >= 1), or a refusal naming the nearest k."""
    if not 0 < beta < 1:
        _fail(node, kind, "tau", f"1 − dt/τ = {beta!r} must lie in (0, 1) for a leak")
    k = -math.log2(beta)
    nearest = max(1, round(k))
    if abs(beta - 2.0 ** -nearest) > POWER_OF_TWO_TOLERANCE * 2.0 ** -nearest or nearest > MAX_LEAK_SHIFT:
        _fail(node, kind, "tau", f"1 − dt/τ = {beta:.9g} is not a power of two 2^−k (nearest: k = {nearest}, "
                                 f"2^−{nearest} = {2.0 ** -nearest:g}): Tern's leak is a shift; τ = dt/(1 − 2^−k)")
    return nearest


def _snap(value: float) -> float:
    """A gain that is a power of two up to float rounding of τ/dt becomes exactly that power."""
    if value > 0:
        p = 2.0 ** round(math.log2(value))
        if abs(value - p) <= POWER_OF_TWO_TOLERANCE * p:
            return p
    return value


class _Builder:
    """Accumulates layer dicts and their parameters for one sequence (top level or a residual body)."""

    def __init__(self, names: set, state: dict):
        self.layers: list[dict] = []
        self.names = names
        self.state = state

    def name(self, node: str) -> str:
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in node).strip("_") or "layer"
        if base[0].isdigit():
            base = "n" + base
        name, i = base, 1
        while name in self.names or name == "input":
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def last_weighted(self):
        return self.layers[-1] if self.layers and self.layers[-1]["type"] in ("conv2d", "linear") else None


def _scale_weighted(b: _Builder, layer: dict, gain: np.ndarray) -> None:
    """Multiply a conv/linear's output channels (weights and bias) by a per-channel gain."""
    w = b.state[f"{layer['name']}.weight"]
    b.state[f"{layer['name']}.weight"] = w * gain.reshape((-1,) + (1,) * (w.ndim - 1))
    if layer["bias"]:
        b.state[f"{layer['name']}.bias"] = b.state[f"{layer['name']}.bias"] * gain


def _per_channel(node: str, kind: str, field: str, value, shape) -> np.ndarray:
    """A per-neuron array that is constant over each channel's positions -> one value per channel."""
    array = np.broadcast_to(np.asarray(value, dtype=np.float64), tuple(shape))
    per = array.reshape(shape[0], -1)
    if not np.all(per == per[:, :1]):
        _fail(node, kind, field, "differs between positions of one channel: Tern's weights are shared across "
                                 "positions, so only a per-channel value folds")
    return per[:, 0].copy()


def _neuron(b: _Builder, node: str, nir_node, conv: Conventions, shape, after_residual: bool) -> None:
    import nir
    kind = type(nir_node).__name__
    meta = {k: _meta(nir_node.metadata or {}, k) for k in (nir_node.metadata or {})}
    dt = conv.dt
    if isinstance(nir_node, nir.CubaLIF):
        tau_syn = _uniform(node, kind, "tau_syn", nir_node.tau_syn)
        if abs(tau_syn - dt) > POWER_OF_TWO_TOLERANCE * dt:
            _fail(node, kind, "tau_syn", f"must equal dt = {dt:g} (the synaptic current then follows its input "
                                         f"in one step), not {tau_syn:g}: Tern has no synaptic state")
        tau = _uniform(node, kind, "tau_mem", nir_node.tau_mem)
        w_in = _per_channel(node, kind, "w_in", nir_node.w_in, shape)
    elif isinstance(nir_node, nir.LIF):
        tau, w_in = _uniform(node, kind, "tau", nir_node.tau), np.ones(shape[0])
    else:  # IF
        tau, w_in = None, np.ones(shape[0])
    r = _uniform(node, kind, "r", nir_node.r)
    if tau is not None:
        if not tau > 0:
            _fail(node, kind, "tau", f"must be > 0, not {tau!r}")
        k = _leak_shift(node, kind, 1.0 - dt / tau)
        gain = _snap(dt / tau * r)
        leak = _uniform(node, kind, "v_leak", nir_node.v_leak)
        bias_add = dt / tau * leak
    else:
        k = 0
        gain = _snap(r * dt if conv.if_gain == "r_dt" else r)
        bias_add = 0.0
    v_reset = _uniform(node, kind, "v_reset", nir_node.v_reset)
    if v_reset != 0:
        _fail(node, kind, "v_reset", f"must be 0, not {v_reset:g}: Tern neurons reset to 0 (a shifted membrane "
                                     f"would need the leak and the initial state moved too)")
    neuron = meta.get("tern.neuron", "binary")
    if neuron not in ("binary", "ternary"):
        _fail(node, kind, "metadata tern.neuron", f"must be 'binary' or 'ternary', not {neuron!r}")
    if "tern.theta" in meta:  # written by gen export: the exact ≥ threshold beside the off-grid one
        theta = _uniform(node, kind, "metadata tern.theta", meta["tern.theta"])
        if neuron == "ternary" and _uniform(node, kind, "metadata tern.theta_neg", meta.get("tern.theta_neg", [])) != -theta:
            _fail(node, kind, "metadata tern.theta_neg", "must be −θ: separate thresholds (MPBN) are not importable")
    elif neuron == "ternary":
        _fail(node, kind, "metadata tern.neuron", "a ternary neuron needs its exact thresholds in tern.theta")
    else:
        theta = _uniform(node, kind, "v_threshold", nir_node.v_threshold)
        if conv.fire == "gt":
            _fail(node, kind, "v_threshold", "fires on v > v_threshold (the NIR spec) while Tern fires on v ≥ θ; "
                                             "they differ on ties, which quantised membranes hit, and no fixed "
                                             "shift of θ restores exactness for every step of a leaky neuron; "
                                             "declare fire='ge' only if the producer fires on ≥ (SpikingJelly)")
    if not theta > 0:
        _fail(node, kind, "v_threshold", f"must be > 0, not {theta!r}")
    total = w_in * gain
    if not np.all(total == 1.0) or bias_add != 0.0:
        if after_residual:
            _fail(node, kind, "r", f"the input gain r·dt/τ = {gain:g} (or w_in, v_leak) is not 1 after a fan-in: "
                                   f"it would scale the identity shortcut too")
        prev = b.last_weighted()
        if prev is None:
            _fail(node, kind, "r", f"the input gain {gain:g} (or w_in, v_leak) must fold into a preceding "
                                   f"Affine/Linear/Conv2d, and there is none")
        _scale_weighted(b, prev, total)
        if bias_add != 0.0:
            if not prev["bias"]:
                prev["bias"] = True
                b.state[f"{prev['name']}.bias"] = np.zeros(prev.get("out_channels", prev.get("out_features")))
            b.state[f"{prev['name']}.bias"] = b.state[f"{prev['name']}.bias"] + bias_add
    b.layers.append({"name": b.name(node), "type": "lif", "neuron": neuron, "tau_shift": k,
                     "v_threshold": 2.0 * theta, "amplitude": False, "mpbn": False, "mpbn_eps": 1e-5})


def _map_node(b: _Builder, node: str, nir_node, conv: Conventions, shape, after_residual: bool):
    """Append the Tern layers of one node; returns the output shape (per sample)."""
    import nir
    kind = type(nir_node).__name__
    if isinstance(nir_node, (nir.Affine, nir.Linear)):
        if len(shape) != 1:
            _fail(node, kind, None, f"reads a {list(shape)} input: put a Flatten before it")
        weight = np.asarray(nir_node.weight, dtype=np.float64)
        if weight.ndim != 2 or weight.shape[1] != shape[0]:
            _fail(node, kind, "weight", f"must have shape [out, {shape[0]}], not {list(weight.shape)}")
        name = b.name(node)
        has_bias = isinstance(nir_node, nir.Affine)
        b.layers.append({"name": name, "type": "linear", "in_features": weight.shape[1],
                         "out_features": weight.shape[0], "bias": has_bias})
        b.state[f"{name}.weight"] = weight
        if has_bias:
            b.state[f"{name}.bias"] = np.asarray(nir_node.bias, dtype=np.float64).reshape(-1)
        return (weight.shape[0],)
    if isinstance(nir_node, nir.Conv2d):
        if len(shape) != 3:
            _fail(node, kind, None, f"reads a {list(shape)} input, not [C, H, W]")
        weight = np.asarray(nir_node.weight, dtype=np.float64)
        if weight.ndim != 4 or weight.shape[1] != shape[0]:
            _fail(node, kind, "weight", f"must have shape [out, {shape[0]}, k, k], not {list(weight.shape)}")
        if weight.shape[2] != weight.shape[3]:
            _fail(node, kind, "weight", f"kernel {weight.shape[2]}x{weight.shape[3]} must be square")
        if int(np.asarray(nir_node.groups)) != 1:
            _fail(node, kind, "groups", f"must be 1, not {nir_node.groups}: grouped convolutions are not supported")
        if _square(node, kind, "dilation", nir_node.dilation) != 1:
            _fail(node, kind, "dilation", f"must be 1, not {np.asarray(nir_node.dilation).tolist()}")
        stride = _square(node, kind, "stride", nir_node.stride)
        padding = nir_node.padding
        if isinstance(padding, (str, bytes)):
            padding = padding.decode() if isinstance(padding, bytes) else padding
            k = weight.shape[2]
            if padding == "valid":
                padding = 0
            elif padding == "same" and stride == 1 and k % 2 == 1:
                padding = (k - 1) // 2
            else:
                _fail(node, kind, "padding", f"{padding!r} with kernel {k} and stride {stride} is not a symmetric "
                                             f"zero padding")
        padding = _square(node, kind, "padding", padding, allow_zero=True)
        name = b.name(node)
        k = weight.shape[2]
        b.layers.append({"name": name, "type": "conv2d", "in_channels": weight.shape[1],
                         "out_channels": weight.shape[0], "kernel_size": k, "stride": stride,
                         "padding": padding, "bias": True})
        b.state[f"{name}.weight"] = weight
        b.state[f"{name}.bias"] = np.broadcast_to(np.asarray(nir_node.bias, dtype=np.float64),
                                                  (weight.shape[0],)).copy()
        h, w = (shape[1] + 2 * padding - k) // stride + 1, (shape[2] + 2 * padding - k) // stride + 1
        return (weight.shape[0], h, w)
    if isinstance(nir_node, nir.Flatten):
        if len(shape) == 1:
            return shape
        start, end = int(nir_node.start_dim), int(nir_node.end_dim)
        if start != 0 or end not in (-1, len(shape) - 1):
            _fail(node, kind, "start_dim", f"must flatten every dimension (start_dim 0, end_dim -1), not "
                                           f"{start}..{end}")
        b.layers.append({"name": b.name(node), "type": "flatten"})
        return (int(np.prod(shape)),)
    if isinstance(nir_node, (nir.AvgPool2d, nir.SumPool2d)):
        k = _square(node, kind, "kernel_size", nir_node.kernel_size)
        if _square(node, kind, "stride", nir_node.stride) != k:
            _fail(node, kind, "stride", f"must equal the kernel size {k} (non-overlapping windows)")
        if _square(node, kind, "padding", nir_node.padding, allow_zero=True) != 0:
            _fail(node, kind, "padding", "must be 0")
        if len(shape) != 3:
            _fail(node, kind, None, f"reads a {list(shape)} input, not [C, H, W]")
        b.layers.append({"name": b.name(node), "type": "avgpool2d", "kernel_size": k})
        if isinstance(nir_node, nir.SumPool2d):
            b.pending_gain = float(k * k)  # a sum is k²·average: the consumer's weights take k²
        return (shape[0], shape[1] // k, shape[2] // k)
    if isinstance(nir_node, nir.Scale):
        scale = np.asarray(nir_node.scale, dtype=np.float64)
        prev = b.layers[-1] if b.layers else None
        if prev is not None and prev["type"] in ("conv2d", "linear"):
            _scale_weighted(b, prev, _per_channel(node, kind, "scale", scale, shape))
            return shape
        if prev is not None and prev["type"] == "lif":
            a = _uniform(node, kind, "scale", scale)
            prev["amplitude"] = True
            b.state[f"{prev['name']}.amplitude"] = np.asarray(
                a * float(b.state.get(f"{prev['name']}.amplitude", 1.0)), dtype=np.float64)
            return shape
        _fail(node, kind, None, "must follow an Affine/Linear/Conv2d (it folds into the weights) or a neuron "
                                "(it becomes the spike amplitude)")
    if isinstance(nir_node, (nir.LIF, nir.IF, nir.CubaLIF)):
        _neuron(b, node, nir_node, conv, shape, after_residual)
        return shape
    why = {"Threshold": "a threshold without a membrane has no Tern neuron",
           "Delay": "Tern layers have no synaptic delays",
           "LI": "a leaky readout weights the steps unequally; Tern's readout is the mean over T",
           "CubaLI": "a leaky readout weights the steps unequally; Tern's readout is the mean over T",
           "I": "an integrator is supported only as the last node (the readout)",
           "NIRGraph": "nested subgraphs are not supported (flatten the graph first)"}
    _fail(node, kind, None, why.get(kind, "no Tern layer computes it") + "; supported: Affine, Linear, Conv2d, "
          "Flatten, AvgPool2d, SumPool2d, Scale, LIF, IF, CubaLIF (τ_syn = dt), I (readout)")


def _apply_pending_gain(b: _Builder) -> None:
    gain = getattr(b, "pending_gain", None)
    prev = b.last_weighted()
    if gain is not None and prev is not None:
        b.pending_gain = None
        _scale_weighted(b, prev, np.full(prev.get("out_channels", prev.get("out_features")), gain))
        # the fold multiplies outputs; a sum pool scales the consumer's inputs: the same for a linear map,
        # but the bias must not be scaled
        if prev["bias"]:
            b.state[f"{prev['name']}.bias"] = b.state[f"{prev['name']}.bias"] / gain


def graph_to_checkpoint(graph, conv: Conventions, name: str = "model") -> dict:
    """A Tern checkpoint dict (docs/checkpoint.md) from a nir.NIRGraph."""
    import nir
    import torch
    succ, pred = _successors(graph)
    _check_acyclic(graph, succ)
    inputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirError(f"the graph must have exactly one Input and one Output node, not {inputs} and {outputs}")
    in_shape = [int(v) for v in np.asarray(graph.nodes[inputs[0]].input_type["input"]).reshape(-1)]
    if len(in_shape) == 1:
        in_shape = [1, 1, in_shape[0]]
    if len(in_shape) != 3:
        _fail(inputs[0], "Input", "shape", f"must be [C, H, W] or [F], not {in_shape}")
    names: set = set()
    state: dict = {}
    top = _Builder(names, state)
    shape = tuple(in_shape)
    node = inputs[0]
    visited = 0
    readout_integrator = False
    while True:
        visited += 1
        if visited > len(graph.nodes) + 1:
            raise NirError("the graph could not be walked from Input to Output")
        nexts = succ[node]
        if node == outputs[0]:
            break
        if len(nexts) == 0:
            _fail(node, type(graph.nodes[node]).__name__, None, "does not lead to the Output node")
        if len(nexts) == 1:
            nxt = nexts[0]
            if len(pred[nxt]) > 1:
                _fail(nxt, type(graph.nodes[nxt]).__name__, None,
                      "sums several inputs but is not the end of a residual block (an identity edge from a "
                      "neuron beside a chain of layers)")
            if nxt == outputs[0]:
                node = nxt
                continue
            nir_node = graph.nodes[nxt]
            if isinstance(nir_node, nir.I) and succ[nxt] == [outputs[0]]:
                r = _uniform(nxt, "I", "r", nir_node.r)
                if not r > 0:
                    _fail(nxt, "I", "r", f"must be > 0 (it scales the logits), not {r!r}")
                readout_integrator = True  # v_T = gain·Σ_t I_t: the same class as Tern's mean
                node = nxt
                continue
            shape = _map_node(top, nxt, nir_node, conv, shape, after_residual=False)
            if not isinstance(nir_node, (nir.AvgPool2d, nir.SumPool2d, nir.Flatten)):
                _apply_pending_gain(top)
            node = nxt
            continue
        # fan-out: a residual block, identity shortcut beside a body chain that meets it again
        kind = type(graph.nodes[node]).__name__
        if len(nexts) != 2 or not top.layers or top.layers[-1]["type"] != "lif":
            _fail(node, kind, None, f"fans out to {nexts}: only a neuron's spikes may fan out, into a residual "
                                    f"block (one chain of layers and one identity edge that meet again)")
        direct = [n for n in nexts if len(pred[n]) > 1]
        other = [n for n in nexts if n not in direct]
        shortcut = None
        if len(direct) == 0 and len(other) == 2:
            # a projection shortcut: one branch is a 1×1 Conv2d (and Scales folding into it)
            branches = [_end_of_branch(n, succ, pred, len(graph.nodes)) for n in other]
            projections = [i for i, (chain, _) in enumerate(branches) if _is_projection(graph, chain)]
            if branches[0][1] is None or branches[0][1] != branches[1][1] or not projections:
                _fail(node, kind, None, f"fans out to {nexts}: the branches must meet again, one of them a 1×1 "
                                        f"Conv2d (a projection shortcut) or a direct edge (an identity shortcut)")
            shortcut = branches[projections[-1]][0]
            chain, join = branches[1 - projections[-1]]
        elif len(direct) != 1 or len(other) != 1:
            _fail(node, kind, None, f"fans out to {nexts}: a residual shortcut must be a direct edge into the node "
                                    f"where the branches meet, or a 1×1 Conv2d")
        else:
            join = direct[0]
            chain, end = _end_of_branch(other[0], succ, pred, len(graph.nodes))
            if end != join:
                _fail(node, kind, None, f"the branch through {other[0]!r} does not meet the shortcut at {join!r}")
        projected = shape
        shortcut_layers = []
        if shortcut is not None:
            sc = _Builder(names, state)
            for member in shortcut:
                projected = _map_node(sc, member, graph.nodes[member], conv, projected, after_residual=False)
            if sc.layers[0]["kernel_size"] != 1 or sc.layers[0]["padding"] != 0:
                _fail(shortcut[0], "Conv2d", "weight", "a projection shortcut must be a 1×1 convolution without "
                                                       "padding")
            shortcut_layers = sc.layers
        body = _Builder(names, state)
        inner = shape
        for member in chain:
            inner = _map_node(body, member, graph.nodes[member], conv, inner, after_residual=False)
            _apply_pending_gain(body)
        if tuple(inner) != tuple(projected):
            _fail(join, type(graph.nodes[join]).__name__, None,
                  f"sums a body output of shape {list(inner)} with a shortcut of shape {list(projected)}")
        if not body.layers or body.layers[-1]["type"] not in ("conv2d", "linear"):
            _fail(chain[-1] if chain else join, "residual body", None, "must end in an Affine/Linear/Conv2d")
        join_node = graph.nodes[join]
        if not isinstance(join_node, (nir.LIF, nir.IF, nir.CubaLIF)):
            _fail(join, type(join_node).__name__, None, "sums a residual block: it must be a neuron")
        top.layers.append({"name": top.name(f"{join}_block"), "type": "residual", "body": body.layers,
                           "shortcut": shortcut_layers})
        shape = tuple(inner)
        _neuron(top, join, join_node, conv, shape, after_residual=True)
        node = join
    if getattr(top, "pending_gain", None):
        raise NirError("a SumPool2d must be followed by an Affine/Linear/Conv2d")
    del readout_integrator  # the class is the same; logits are scaled by the integrator's gain·T
    arch = {"input_shape": in_shape, "timesteps": conv.timesteps, "layers": top.layers,
            "input_normalization": None if conv.input_scale != 1.0
            else {"mean": [0.0] * in_shape[0], "std": [1 / 255] * in_shape[0]}}
    if in_shape[:2] == [1, 1] and len(np.asarray(graph.nodes[inputs[0]].input_type["input"]).reshape(-1)) == 1:
        pass  # a flat input: the first Affine reads the flattened [1, 1, F] image, which is the same vector
    tensors = {k: torch.as_tensor(np.array(v, dtype=np.float64)) for k, v in state.items()}
    meta = {"source": "nir", "neuron": next((l["neuron"] for l in top.layers if l["type"] == "lif"), None),
            "timesteps": conv.timesteps,
            "nir": {"dt": conv.dt, "if_gain": conv.if_gain, "fire": conv.fire, "input_scale": conv.input_scale}}
    ckpt = {"format": "tern-checkpoint", "version": 1, "arch": arch, "state_dict": tensors, "meta": meta}
    try:
        return validate_checkpoint(ckpt, source=name)
    except ArchError as exc:
        raise NirError(f"{name}: the mapped network is not a Tern model: {exc}") from None


def read_graph(path: str | os.PathLike):
    import nir
    path = Path(path)
    if not path.is_file():
        raise NirError(f"NIR file not found: {path}")
    try:
        return nir.read(path)
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NirError(f"{path} is not a readable NIR graph (HDF5 written by nir.write): {first}") from None


def read_nir(path: str | os.PathLike, **options) -> dict:
    """Read a .nir file into a Tern checkpoint dict; options as `resolve_conventions`."""
    graph = read_graph(path)
    conv = resolve_conventions(graph.metadata or {}, **options)
    try:
        return graph_to_checkpoint(graph, conv, name=str(path))
    except NirError as exc:
        raise NirError(f"{path}: {exc}") from None
