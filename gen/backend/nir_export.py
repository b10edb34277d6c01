"""A compiled Tern network -> a NIR graph whose float semantics are Tern's, exactly (docs/interop.md).

    network_to_graph(ir_network) -> nir.NIRGraph

The graph holds the fake-quantised model (W_int/c, b_int/c per output channel, c = 2^e), so a
float64 simulator of it reproduces the golden model with no rounding at all: golden logits =
2^e_readout · Σ_t Output_t. Conventions, chosen so that every consumer agrees:

* dt = 1: a leaky layer (τ = 2^−k, k >= 1) is a standard `LIF` with tau = 1/(1 − 2^−k) and
  r = tau (input gain dt/τ·r = 1), v_leak = v_reset = 0; k = 0 is an `IF` with r = 1, whose gain
  is 1 under both IF conventions (r·dt and r) because dt = 1.
* v_threshold = θ − δ with δ half the finest step of the membrane's grid (2^−(e_max + k(T−1)) / 2):
  no membrane value lies in [θ − δ, θ), so `v > v_threshold` (the NIR spec) and `v ≥ v_threshold`
  (SpikingJelly, Tern) both fire exactly when Tern does. The exact θ is kept in `tern.theta`.
* Input = the raw uint8 pixel (0..255) at every step; Output = the readout current per step,
  whose mean over T is Tern's logits.
* Ternary layers carry `tern.neuron = "ternary"` and `tern.theta_neg` in the node's metadata:
  Tern reads them back exactly; other tools read the node as a binary LIF (they cannot emit −1).
"""
from __future__ import annotations

import numpy as np

from gen.errors import ModelError
from gen.ir import INPUT, Network
from gen.ops import op_spec

FORMAT = "tern-nir"
VERSION = 1


def _fq(array: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """W_int / 2^e per output channel (exact: a power-of-two scale)."""
    return np.ldexp(array.astype(np.float64), (-exps.astype(np.int64)).reshape((-1,) + (1,) * (array.ndim - 1)))


def _neuron_node(layer, timesteps: int):
    import nir
    shape = tuple(layer.shape)
    exps = layer.scale_exp.astype(np.int64)
    theta_pos = _fq(layer.theta_pos, exps)
    k = int(layer.leak_shift)
    # the membrane of channel c at step t is a multiple of 2^−(e_c + k·t); the finest grid is at t = T−1
    delta = np.ldexp(1.0, -(int(exps.max()) + k * (timesteps - 1)) - 1)
    per_neuron = lambda values: np.broadcast_to(  # noqa: E731
        np.asarray(values, np.float64).reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()
    threshold = per_neuron(theta_pos - delta)
    zeros = np.zeros(shape)
    metadata = {"tern.neuron": layer.neuron, "tern.theta": theta_pos, "tern.leak_shift": k}
    if layer.neuron == "ternary":
        metadata["tern.theta_neg"] = _fq(layer.theta_neg, exps)
    if k == 0:
        return nir.IF(r=np.ones(shape), v_threshold=threshold, v_reset=zeros, metadata=metadata)
    tau = 1.0 / (1.0 - 2.0 ** -k)
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau), v_leak=zeros.copy(), v_threshold=threshold,
                   v_reset=zeros.copy(), metadata=metadata)


def network_to_graph(net: Network):
    """The NIR graph of an integer network's fake-quantised float model."""
    import nir
    nodes = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    edges: list[tuple[str, str]] = []
    out_of = {INPUT: "input"}     # layer name -> the node that emits its spikes
    shapes = {INPUT: tuple(net.input_shape)}
    for layer in net.layers:
        exps = layer.scale_exp.astype(np.int64)
        bias = _fq(layer.bias, exps)
        targets = []
        for i, p in enumerate(layer.projections):
            node = layer.name if i == 0 else f"{layer.name}_proj{i}"
            weight = _fq(p.weight, exps)
            b = bias if i == 0 else np.zeros_like(bias)
            src = out_of[p.source]
            # Each op's entry in gen.ops gives its NIR nodes (a flatten before a dense, ...).
            for name, nir_node in op_spec(p.op).nir_nodes(p.op, weight, b, shapes[p.source], tuple(layer.shape),
                                                          node, f"layer {layer.name!r}: "):
                nodes[name] = nir_node
                edges.append((src, name))
                src = name
            targets.append(node)
        if layer.kind == "readout":
            if len(targets) != 1:
                raise ModelError(f"layer {layer.name!r}: a readout with {len(targets)} projections has no single "
                                 f"NIR output node")
            nodes["output"] = nir.Output(output_type={"output": np.array(layer.shape)})
            edges.append((targets[0], "output"))
            break
        neuron = f"{layer.name}_lif"
        nodes[neuron] = _neuron_node(layer, net.timesteps)
        edges.extend((t, neuron) for t in targets)
        out_of[layer.name] = neuron
        shapes[layer.name] = tuple(layer.shape)
    readout = net.layers[-1]
    metadata = {"tern.format": FORMAT, "tern.version": VERSION, "tern.dt": 1.0, "tern.if_gain": "r_dt",
                "tern.fire": "ge", "tern.timesteps": int(net.timesteps), "tern.input_scale": 1.0,
                "tern.wbits": int(net.wbits), "tern.readout_scale_exp": int(readout.scale_exp.max()),
                "tern.readout": "logits = mean over timesteps of the Output; golden logits = "
                                "2^readout_scale_exp * sum over timesteps",
                "tern.name": net.name}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_graph(graph, path) -> None:
    """nir.write to a temporary file in the same folder, then rename: never a half-written .nir."""
    import os
    import tempfile
    from pathlib import Path

    import nir
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
