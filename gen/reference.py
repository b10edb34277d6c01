"""The layered float network and its float64 PyTorch model (SPEC §1 semantics, §3 fake-quantisation).

A `FloatNetwork` has the IR's structure (layers of projections, thresholds per channel) with
float64 arrays. `to_layers` (gen.folds) makes one from a folded checkpoint;
`fake_quantised(ir_net)` makes the one whose weights are W_int/c, b_int/c, θ±_int/c.
`make_reference_model` builds a torch.nn.Module that runs either in torch float64 with the float semantics

    u_t = τ·r_{t−1} + I_t,  s_t = +1 if u_t ≥ θ⁺, −1 if u_t ≤ θ⁻ (ternary), else 0,  r_t = u_t·(1 − |s_t|)

Because c = 2^e, every fake-quantised number is a dyadic rational and every sum above is
exact in float64: the fake-quantised model equals the golden model divided by c·2^(k·t)
(logit sums by c), with no rounding at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import INPUT, Network
from .ops import op_spec


@dataclass(frozen=True, eq=False)
class FloatProjection:
    source: str
    op: object               # gen.ir.Conv2d | Dense | Identity
    weight: np.ndarray       # float64, the IR weight shape


@dataclass(frozen=True, eq=False)
class FloatLayer:
    name: str
    kind: str                # "encoding" | "spiking" | "readout"
    shape: tuple[int, ...]
    projections: tuple[FloatProjection, ...]
    bias: np.ndarray         # [O]
    neuron: str | None
    theta_pos: np.ndarray | None
    theta_neg: np.ndarray | None
    leak_shift: int
    lif_name: str | None = None  # the checkpoint's lif layer that fires this layer's spikes


@dataclass(frozen=True, eq=False)
class FloatNetwork:
    name: str
    input_shape: tuple[int, int, int]
    timesteps: int
    layers: tuple[FloatLayer, ...]


@dataclass
class ReferenceResult:
    logits: np.ndarray        # float64 [N, K]: mean over T (the float model's logits)
    logit_sums: np.ndarray    # float64 [N, K]: Σ_t of the readout current (exact; = golden logits / c)
    classes: np.ndarray       # int64 [N]
    spikes: dict[str, np.ndarray]  # layer name -> int8 [N, T, *shape]


def fake_quantised(net: Network) -> FloatNetwork:
    """The float64 network (W_int/c, b_int/c, θ±_int/c), c = 2^scale_exp per output channel."""
    layers = []
    for layer in net.layers:
        inv = np.ldexp(1.0, -layer.scale_exp.astype(np.int64))  # exact: 1/c per output channel

        def per_out(array, ndim):
            return array.astype(np.float64) * inv.reshape((-1,) + (1,) * (ndim - 1))

        projections = tuple(FloatProjection(p.source, p.op, per_out(p.weight, p.weight.ndim))
                            for p in layer.projections)
        layers.append(FloatLayer(
            name=layer.name, kind=layer.kind, shape=layer.shape, projections=projections,
            bias=per_out(layer.bias, 1), neuron=layer.neuron,
            theta_pos=None if layer.theta_pos is None else per_out(layer.theta_pos, 1),
            theta_neg=None if layer.theta_neg is None else per_out(layer.theta_neg, 1),
            leak_shift=layer.leak_shift))
    return FloatNetwork(name=net.name, input_shape=net.input_shape, timesteps=net.timesteps, layers=tuple(layers))


def _torch():
    import torch
    return torch


def make_reference_model(net: "FloatNetwork | Network"):
    """A torch.nn.Module (float64, eval) computing the float semantics of `net`.

    An IR `Network` is fake-quantised first. `module(images)` returns the logits;
    `module.run(images)` returns a ReferenceResult with every spike map.
    """
    torch = _torch()

    if isinstance(net, Network):
        net = fake_quantised(net)

    class _Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            for li, layer in enumerate(net.layers):
                self.register_buffer(f"l{li}_bias", torch.tensor(np.array(layer.bias), dtype=torch.float64))
                for pi, p in enumerate(layer.projections):
                    self.register_buffer(f"l{li}_p{pi}_weight", torch.tensor(np.array(p.weight), dtype=torch.float64))
                if layer.theta_pos is not None:
                    self.register_buffer(f"l{li}_theta_pos", torch.tensor(np.array(layer.theta_pos), dtype=torch.float64))
                if layer.theta_neg is not None:
                    self.register_buffer(f"l{li}_theta_neg", torch.tensor(np.array(layer.theta_neg), dtype=torch.float64))
            self.eval()

        @staticmethod
        def _channel(t, ndim):
            return t.reshape((1, -1) + (1,) * (ndim - 2))

        def _project(self, op, weight, x):
            return op_spec(op).torch_project(op, weight, x)     # each op's formulation: gen.ops

        def _current(self, li, layer, sources):
            out = None
            for pi, p in enumerate(layer.projections):
                term = self._project(p.op, getattr(self, f"l{li}_p{pi}_weight"), sources[p.source])
                out = term if out is None else out + term
            return out + self._channel(getattr(self, f"l{li}_bias"), out.ndim)

        @torch.no_grad()
        def run(self, images) -> ReferenceResult:
            x = torch.as_tensor(np.asarray(images)).to(torch.float64)
            T = self.net.timesteps
            n = x.shape[0]
            residual = {}
            spikes = {layer.name: [] for layer in self.net.layers[:-1]}
            total = None
            encoding_current = None
            for t in range(T):
                step = {INPUT: x}
                for li, layer in enumerate(self.net.layers):
                    if layer.kind == "encoding":
                        if encoding_current is None:
                            encoding_current = self._current(li, layer, step)
                        current = encoding_current
                    else:
                        current = self._current(li, layer, step)
                    if layer.kind == "readout":
                        total = current if total is None else total + current
                        continue
                    tau = 2.0 ** -layer.leak_shift
                    u = current if t == 0 else tau * residual[layer.name] + current
                    pos = u >= self._channel(getattr(self, f"l{li}_theta_pos"), u.ndim)
                    s = pos.to(torch.float64)
                    if layer.neuron == "ternary":
                        s = s - ((u <= self._channel(getattr(self, f"l{li}_theta_neg"), u.ndim)) & ~pos).to(torch.float64)
                    residual[layer.name] = u * (1 - s.abs())
                    step[layer.name] = s
                    spikes[layer.name].append(s.to(torch.int8))
            sums = total.numpy().copy()
            return ReferenceResult(logits=(total / T).numpy().copy(), logit_sums=sums,
                                   classes=np.argmax(sums, axis=1).astype(np.int64),
                                   spikes={k: torch.stack(v, 1).numpy().copy() for k, v in spikes.items()})

        def forward(self, images):
            return torch.as_tensor(self.run(images).logits)

    return _Reference()


def run_reference(net: "FloatNetwork | Network", images, chunk: int = 500) -> ReferenceResult:
    """Float64 semantics of a layered network (an IR network is fake-quantised first)."""
    model = make_reference_model(net)
    images = np.asarray(images)
    parts = [model.run(images[i:i + chunk]) for i in range(0, max(len(images), 1), chunk)]
    return ReferenceResult(logits=np.concatenate([p.logits for p in parts]),
                           logit_sums=np.concatenate([p.logit_sums for p in parts]),
                           classes=np.concatenate([p.classes for p in parts]),
                           spikes={k: np.concatenate([p.spikes[k] for p in parts]) for k in parts[0].spikes})
