"""The layered float network and its float64 PyTorch model (SPEC §1 semantics, §3 fake-quantisation).

A `FloatNetwork` has the IR's structure (layers of projections, thresholds per channel) with
float64 arrays. `to_layers` (gen.frontend.folds) makes one from a folded checkpoint;
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

from gen.ir import INPUT, Network
from gen.ops import op_spec


@dataclass(frozen=True, eq=False)
class FloatProjection:
    source: str
    op: object               # gen.ir.Conv2d | Dense | Identity
    weight: np.ndarray       # float64, the IR weight shape


@dataclass(frozen=True, eq=False)
class FloatTables:
    """A converted neuron's extra fields in float form (docs/msat.md §3).

    amplitude: float [C] (if_subtract); d_bits/x_bits: int [C], the cells are
    floor(d̂·2^d_bits) and floor(Î·2^x_bits) in normalised units; the tables stay integers.
    """
    amplitude: np.ndarray | None = None
    signed: bool = False
    ladder_steps: int = 0
    lut_half: int = 0
    lut_d: np.ndarray | None = None
    lut_x: np.ndarray | None = None
    ladder_z: np.ndarray | None = None
    half_start: bool = False
    d_bits: np.ndarray | None = None
    x_bits: np.ndarray | None = None
    fields: dict | None = None     # the checkpoint's msat/if_subtract layer dict (before quantisation)


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
    tables: FloatTables | None = None  # converted neurons (if_subtract, msat)


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
    ladders: dict[str, np.ndarray] | None = None  # msat layer name -> int8 [N, T, *shape]: m^t


def fake_quantised(net: Network) -> FloatNetwork:
    """The float64 network (W_int/c, b_int/c, θ±_int/c), c = 2^scale_exp per output channel."""
    layers = []
    for layer in net.layers:
        inv = np.ldexp(1.0, -layer.scale_exp.astype(np.int64))  # exact: 1/c per output channel

        def per_out(array, ndim):
            return array.astype(np.float64) * inv.reshape((-1,) + (1,) * (ndim - 1))

        projections = tuple(FloatProjection(p.source, p.op, per_out(p.weight, p.weight.ndim))
                            for p in layer.projections)
        tables = None
        if layer.tables is not None:
            t = layer.tables
            tables = FloatTables(
                amplitude=None if t.amplitude is None else per_out(t.amplitude, 1), signed=t.signed,
                ladder_steps=t.ladder_steps, lut_half=t.lut_half, lut_d=t.lut_d, lut_x=t.lut_x, ladder_z=t.ladder_z,
                half_start=t.half_start,
                d_bits=None if t.d_shift is None else layer.scale_exp - t.d_shift,
                x_bits=None if t.x_shift is None else layer.scale_exp - t.x_shift)
        layers.append(FloatLayer(
            name=layer.name, kind=layer.kind, shape=layer.shape, projections=projections,
            bias=per_out(layer.bias, 1), neuron=layer.neuron,
            theta_pos=None if layer.theta_pos is None else per_out(layer.theta_pos, 1),
            theta_neg=None if layer.theta_neg is None else per_out(layer.theta_neg, 1),
            leak_shift=layer.leak_shift, tables=tables))
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
                tables = layer.tables
                if tables is not None and tables.amplitude is not None:
                    self.register_buffer(f"l{li}_amplitude", torch.tensor(np.array(tables.amplitude), dtype=torch.float64))
                if tables is not None and tables.lut_d is not None:
                    for key in ("lut_d", "lut_x", "ladder_z"):
                        self.register_buffer(f"l{li}_{key}", torch.tensor(np.array(getattr(tables, key)), dtype=torch.int64))
                    for key in ("d_bits", "x_bits"):  # 2^bits per channel, exact powers of two
                        self.register_buffer(f"l{li}_{key}", torch.tensor(np.ldexp(1.0, np.array(getattr(tables, key))),
                                                                          dtype=torch.float64))
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
            extra = {}    # the balance (if_subtract) or the residual sum (msat), per layer
            ladders = {}
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
                    if layer.neuron in ("if_subtract", "msat"):
                        s, value, m = self._converted(li, layer, t, current, residual, extra)
                        step[layer.name] = value
                        spikes[layer.name].append(s.to(torch.int8))
                        if m is not None:
                            ladders.setdefault(layer.name, []).append(m.to(torch.int8))
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
                                   spikes={k: torch.stack(v, 1).numpy().copy() for k, v in spikes.items()},
                                   ladders={k: torch.stack(v, 1).numpy().copy() for k, v in ladders.items()})

        def _converted(self, li, layer, t, current, residual, extra):
            """One step of an if_subtract or msat neuron in float64 (docs/msat.md §3).

            Returns (s, value for the next layer, ladder index m or None)."""
            tables = layer.tables
            start = 0.5 * self._channel(getattr(self, f"l{li}_theta_pos"), current.ndim) if tables.half_start else 0.0
            r = residual.get(layer.name, torch.zeros_like(current) + start)
            u = r + current
            if layer.neuron == "if_subtract":
                balance = extra.get(layer.name, torch.zeros_like(current))
                pos = u >= self._channel(getattr(self, f"l{li}_theta_pos"), u.ndim)
                s = pos.to(torch.float64)
                if tables.signed:
                    neg = (u <= self._channel(getattr(self, f"l{li}_theta_neg"), u.ndim)) & (balance > 0) & ~pos
                    s = s - neg.to(torch.float64)
                residual[layer.name] = u - s * self._channel(getattr(self, f"l{li}_amplitude"), u.ndim)
                extra[layer.name] = balance + s
                return s, s, None
            total = extra.get(layer.name, torch.zeros_like(current))
            if t == 0:
                m = torch.zeros(current.shape, dtype=torch.int64)
            else:
                h = tables.lut_half
                d_scale = self._channel(getattr(self, f"l{li}_d_bits"), u.ndim)
                x_scale = self._channel(getattr(self, f"l{li}_x_bits"), u.ndim)
                # floor((t·R − S)·2^b / t): t·R − S is exact, the quotient's floor is exact (docs/msat.md §3b)
                i_d = (torch.floor((t * r - total) * d_scale / t).to(torch.int64) + h).clamp(0, 2 * h - 1)
                i_x = (torch.floor(current * x_scale).to(torch.int64) + h).clamp(0, 2 * h - 1)
                z = getattr(self, f"l{li}_lut_d")[i_d] + getattr(self, f"l{li}_lut_x")[i_x]
                m = (z.unsqueeze(-1) < getattr(self, f"l{li}_ladder_z")).sum(-1)
            theta = self._channel(getattr(self, f"l{li}_theta_pos"), u.ndim) * torch.pow(2.0, -m.to(torch.float64))
            s = (u >= theta).to(torch.float64)
            residual[layer.name] = u - s * theta
            extra[layer.name] = total + residual[layer.name]
            return s, s * torch.pow(2.0, (tables.ladder_steps - m).to(torch.float64)), m

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
                           spikes={k: np.concatenate([p.spikes[k] for p in parts]) for k in parts[0].spikes},
                           ladders={k: np.concatenate([p.ladders[k] for p in parts]) for k in parts[0].ladders})
