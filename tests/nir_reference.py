"""An independent float64 reference for NIR graphs, for the interop tests (never calls Tern).

    simulate(graph, images, dt=, timesteps=, fire=, if_gain=) -> [output at step t, ...]
    fake_quantise(graph, wbits=8, dt=, if_gain=) -> a copy of the graph with Tern's weight grid

`simulate` walks the graph by NIR's own semantics (Euler steps of size dt, every node's input
the sum of its predecessors' outputs), in numpy. `fake_quantise` puts each weighted node's
weights and bias on the grid Tern's quantisation chooses (SPEC §3: per output channel of a
neuron, c = 2^e with e the largest such that every weight into that channel, identity
shortcuts included, rounds to at most 2^(wbits−1) − 1; one e for all rows of the readout;
round half to even), seen through the gains between the node and the neuron it feeds (Scale,
the neuron's r·dt/τ and w_in, a pool's 1/k², a spike amplitude). Those gains must be powers of
two, so that moving them across the rounding is exact.
"""
from __future__ import annotations

import copy
import math

import nir
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

NEURONS = (nir.LIF, nir.IF, nir.CubaLIF)
WEIGHTED = (nir.Affine, nir.Linear, nir.Conv2d)


def _a(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _pair(value) -> int:
    flat = np.atleast_1d(np.asarray(value)).reshape(-1)
    return int(flat[0])


def _conv2d(x, node):
    w, stride, pad = _a(node.weight), _pair(node.stride), _pair(node.padding)
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", windows, w) + _a(node.bias).reshape(1, -1, 1, 1)


def _pool_sum(x, k):
    n, c, h, w = x.shape
    return x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k).sum(axis=(3, 5))


def _order(graph) -> list[str]:
    pred = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        pred[b].append(a)
    order, done = [], set()
    while len(order) < len(graph.nodes):
        ready = [n for n in graph.nodes if n not in done and all(p in done for p in pred[n])]
        assert ready, "the reference walks acyclic graphs only"
        order += ready
        done.update(ready)
    return order, pred


def simulate(graph, images, *, dt: float, timesteps: int, fire: str = "ge", if_gain: str = "r_dt",
             input_scale: float = 1.0) -> list[np.ndarray]:
    """The Output node's value at each step; every neuron starts at 0 (Euler, dt)."""
    order, pred = _order(graph)
    x = _a(images) * input_scale
    state: dict = {}
    outputs = []
    for _ in range(timesteps):
        out: dict = {}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                out[name] = x
                continue
            h = sum(out[p] for p in pred[name])
            if isinstance(node, nir.Output):
                outputs.append(h)
            elif isinstance(node, nir.Affine):
                out[name] = h @ _a(node.weight).T + _a(node.bias)
            elif isinstance(node, nir.Linear):
                out[name] = h @ _a(node.weight).T
            elif isinstance(node, nir.Conv2d):
                out[name] = _conv2d(h, node)
            elif isinstance(node, nir.Flatten):
                out[name] = h.reshape(h.shape[0], -1)
            elif isinstance(node, nir.SumPool2d):
                out[name] = _pool_sum(h, _pair(node.kernel_size))
            elif isinstance(node, nir.AvgPool2d):
                out[name] = _pool_sum(h, _pair(node.kernel_size)) / _pair(node.kernel_size) ** 2
            elif isinstance(node, nir.Scale):
                out[name] = h * _a(node.scale)
            elif isinstance(node, nir.I):  # dv/dt = r·I
                state[name] = state.get(name, 0.0) + dt * _a(node.r) * h
                out[name] = state[name]
            elif isinstance(node, NEURONS):
                v = state.get(name, np.zeros_like(h))
                if isinstance(node, nir.IF):  # dv/dt = r·I
                    v = v + (dt * _a(node.r) if if_gain == "r_dt" else _a(node.r)) * h
                else:
                    if isinstance(node, nir.CubaLIF):  # τ_syn di/dt = −i + w_in·I
                        i = state.get(name + ".i", np.zeros_like(h))
                        h = state[name + ".i"] = i + dt / _a(node.tau_syn) * (_a(node.w_in) * h - i)
                    tau = _a(node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau)
                    v = v + dt / tau * (_a(node.v_leak) - v + _a(node.r) * h)
                theta = _a(node.v_threshold)
                z = v >= theta if fire == "ge" else v > theta
                state[name] = np.where(z, _a(node.v_reset), v)
                out[name] = z.astype(np.float64)
            else:
                raise NotImplementedError(type(node).__name__)
    return outputs


# --------------------------------------------------------------------------- fake quantisation


def _power_of_two(gain: np.ndarray) -> np.ndarray:
    gain = np.atleast_1d(_a(gain))
    exps = np.round(np.log2(np.abs(gain)))
    assert np.all(gain == np.ldexp(1.0, exps.astype(int))), f"gain {gain} is not a power of two"
    return gain


def _best_exponent(max_abs: float, wbits: int) -> int:
    qmax = 2 ** (wbits - 1) - 1
    e = 0
    while np.round(math.ldexp(max_abs, e)) > qmax:
        e -= 1
    while np.round(math.ldexp(max_abs, e + 1)) <= qmax:
        e += 1
    return e


def _neuron_gain(node, dt: float, if_gain: str, channels: int) -> np.ndarray:
    """What multiplies the summed input current of a neuron (per channel)."""
    if isinstance(node, nir.IF):
        r = _a(node.r).reshape(channels, -1)[:, 0]
        return r * dt if if_gain == "r_dt" else r
    if isinstance(node, (nir.I, nir.Output)):
        return np.ones(channels)
    tau = node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau
    g = (dt / _a(tau) * _a(node.r)).reshape(channels, -1)[:, 0]
    if isinstance(node, nir.CubaLIF):
        g = g * _a(node.w_in).reshape(channels, -1)[:, 0]
    # 4/3 written in float64: dt/τ·r is a power of two up to an ulp, as Tern snaps it
    return np.ldexp(1.0, np.round(np.log2(g)).astype(int))


def _sources(graph, pred, sink):
    """(weighted node, per-output-channel gain) and (neuron, per-channel amplitude) feeding `sink`."""
    found = []

    def back(name, gain):
        node = graph.nodes[name]
        if isinstance(node, WEIGHTED):
            found.append(("weighted", name, gain))
        elif isinstance(node, (nir.Input,) + NEURONS):
            found.append(("identity", name, gain))
        elif isinstance(node, nir.Scale):
            scale = _a(node.scale)
            per_channel = scale.reshape(scale.shape[0], -1)[:, 0] if scale.ndim else np.full(1, float(scale))
            for p in pred[name]:
                src = graph.nodes[p]
                if isinstance(src, NEURONS):  # a spike amplitude: scales the consumer's inputs
                    found.append(("identity", p, gain * _power_of_two(per_channel)))
                else:
                    back(p, gain * _power_of_two(per_channel))
        else:
            raise AssertionError(f"{name}: {type(node).__name__} between a weighted node and its neuron")

    for p in pred[sink]:
        back(p, 1.0)
    return found


def _input_amplitude(graph, pred, name) -> float:
    """A weighted node's inputs are scaled by a spike amplitude (Scale after a neuron) or a pool's 1/k²."""
    gain, node = 1.0, pred[name][0]
    while not isinstance(graph.nodes[node], (nir.Input,) + NEURONS):
        n = graph.nodes[node]
        if isinstance(n, nir.Scale):
            gain *= float(_power_of_two(np.unique(_a(n.scale)))[0])
        elif isinstance(n, nir.AvgPool2d):
            gain /= _pair(n.kernel_size) ** 2
        node = pred[node][0]
    return gain


def fake_quantise(graph, *, wbits: int = 8, dt: float = 1.0, if_gain: str = "r_dt"):
    """A copy of the graph whose weights and biases lie on Tern's integer grid, seen through the gains."""
    graph = copy.deepcopy(graph)
    _, pred = _order(graph)
    sinks = [n for n, v in graph.nodes.items() if isinstance(v, NEURONS + (nir.I,))]
    sinks += [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)
              and not isinstance(graph.nodes[pred[n][0]], nir.I)]
    for sink in sinks:
        node = graph.nodes[sink]
        readout = isinstance(node, (nir.I, nir.Output))
        sources = _sources(graph, pred, sink)
        weighted = [(n, g, _input_amplitude(graph, pred, n)) for kind, n, g in sources if kind == "weighted"]
        channels = _a(graph.nodes[weighted[0][0]].weight).shape[0]
        gain = _neuron_gain(node, dt, if_gain, channels)
        max_abs = np.zeros(channels)
        for name, g, g_in in weighted:
            w = _a(graph.nodes[name].weight)
            eff = np.abs(w.reshape(channels, -1)) * np.abs(np.broadcast_to(g * g_in * gain, (channels,)))[:, None]
            max_abs = np.maximum(max_abs, eff.max(axis=1))
        for kind, name, g in sources:
            if kind == "identity":  # a shortcut is a diagonal projection of weight = its amplitude · gain
                max_abs = np.maximum(max_abs, np.abs(np.broadcast_to(g * gain, (channels,))))
        exps = np.array([_best_exponent(m, wbits) for m in max_abs])
        if readout:
            exps[:] = exps.min()
        for name, g, g_in in weighted:
            n = graph.nodes[name]
            total = np.broadcast_to(g * g_in * gain, (channels,)).reshape((-1,) + (1,) * (_a(n.weight).ndim - 1))
            scale = np.ldexp(total, exps.reshape(total.shape))
            n.weight = np.round(_a(n.weight) * scale) / scale
        # the biases of every projection into a neuron add up before Tern rounds them, once
        biased = [(graph.nodes[name], np.ldexp(np.broadcast_to(g * gain, (channels,)), exps))
                  for name, g, _ in weighted if isinstance(graph.nodes[name], (nir.Affine, nir.Conv2d))]
        if biased:
            total = np.round(sum(np.broadcast_to(_a(n.bias), (channels,)) * bscale for n, bscale in biased))
            for i, (n, bscale) in enumerate(biased):
                n.bias = total / bscale if i == 0 else np.zeros(channels)
    return graph
