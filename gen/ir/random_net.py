"""Small random networks: integer IRs and float checkpoints, for property tests and simulation.

    random_network(rng, ...)     -> gen.ir.Network   (conv and dense, T = 1..6, leak shift 0..3,
                                                       ternary and binary, optional shortcuts,
                                                       optional weights at the extremes)
    random_checkpoint(rng, ...)  -> checkpoint dict  (docs/checkpoint.md: BN, MPBN, amplitude,
                                                       avgpool, residual blocks with identity and
                                                       projection shortcuts, normalisation)
    random_images(rng, net, n)   -> uint8 [n, C, H, W]

Thresholds are drawn relative to the typical current so that layers fire neither never nor
always: a property test on networks that never spike would prove nothing.
"""
from __future__ import annotations

import numpy as np

from gen.ir import INPUT, Conv2d, Dense, Identity, Layer, Network, NeuronTables, Projection

NEURONS = ("ternary", "binary")
CONVERTED = ("if_subtract", "msat")  # random_network(neuron="converted") draws one of these per layer


def _rng(seed_or_rng) -> np.random.Generator:
    return seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)


def random_images(rng, input_shape, n: int) -> np.ndarray:
    rng = _rng(rng)
    images = rng.integers(0, 256, size=(n,) + tuple(input_shape), dtype=np.uint8)
    # Real images have flat regions: zero a random share of the pixels.
    images[rng.random(images.shape) < 0.3] = 0
    return images


# --------------------------------------------------------------------------- integer IR


def _weights(rng, shape, qmax: int, extremes: bool, density: float = 1.0) -> np.ndarray:
    if extremes:
        w = rng.choice(np.array([-qmax, qmax]), size=shape)
    else:
        w = rng.integers(-qmax, qmax + 1, size=shape)
    if density < 1.0:
        w = np.where(rng.random(shape) < density, w, 0)
    return w.astype(np.int64)


def _random_op(rng, in_shape, spatial_ok: bool):
    """A random op applicable to in_shape and its output channels."""
    if len(in_shape) == 3 and spatial_ok and rng.random() < 0.7:
        h = min(in_shape[1], in_shape[2])
        k = int(rng.integers(1, min(3, h) + 1))
        padding = int(rng.integers(0, k // 2 + 1))
        stride = int(rng.integers(1, 3)) if h > 3 else 1
        return Conv2d(kernel=k, stride=stride, padding=padding)
    return Dense()


def _thresholds(rng, neuron: str, typical: np.ndarray):
    theta_pos = np.maximum(1, np.round(typical * rng.uniform(0.3, 1.2, typical.shape))).astype(np.int64)
    if neuron == "binary":
        return theta_pos, None
    if rng.random() < 0.5:
        return theta_pos, -theta_pos
    # MPBN-like: asymmetric thresholds, θ⁻ < θ⁺ (θ⁺ may even be negative).
    shift = np.round(typical * rng.uniform(-0.3, 0.3, typical.shape)).astype(np.int64)
    return theta_pos + shift, -theta_pos + shift - 1


def _converted_fields(rng, neuron: str, typical: np.ndarray) -> dict:
    """theta_pos, theta_neg and tables of a random valid if_subtract or msat layer (docs/msat.md)."""
    channels = typical.shape[0]
    if neuron == "if_subtract":
        amplitude = np.maximum(2, np.round(typical * rng.uniform(0.5, 1.5, channels))).astype(np.int64)
        theta_pos = np.maximum(1, amplitude // 2 + rng.integers(-1, 2, channels))
        theta_neg = -theta_pos - rng.integers(0, 2, channels)
        return {"theta_pos": theta_pos, "theta_neg": theta_neg,
                "tables": NeuronTables(amplitude=amplitude, signed=bool(rng.random() < 0.8))}
    m = int(rng.integers(1, 5))
    step = 1 << m
    theta_pos = (np.maximum(1, np.round(typical * rng.uniform(0.3, 1.2, channels) / step)) * step).astype(np.int64)
    half = int(rng.integers(1, 9))
    ladder_z = -np.sort(-rng.choice(np.arange(-1000, 1000), size=m, replace=False)).astype(np.int64)
    tables = NeuronTables(ladder_steps=m, lut_half=half,
                          lut_d=rng.integers(-1200, 1201, 2 * half), lut_x=rng.integers(-1200, 1201, 2 * half),
                          ladder_z=ladder_z, d_shift=rng.integers(-3, 7, channels),
                          x_shift=rng.integers(-3, 7, channels), half_start=bool(rng.random() < 0.5))
    return {"theta_pos": theta_pos, "theta_neg": None, "tables": tables}


def _current_scale(projections, source_scale) -> float:
    """Rough standard deviation of the current: sqrt(fan-in)·|W|·|s|."""
    total = 0.0
    for p in projections:
        w = p.weight.astype(np.float64)
        fan = p.fan_in()
        rms = np.sqrt(np.mean(w ** 2)) if w.size else 0.0
        total += fan * (rms * source_scale[p.source]) ** 2
    return float(np.sqrt(total)) + 1.0


def random_network(rng=None, *, max_layers: int = 4, wbits: int = 8, extremes: bool = False,
                   shortcuts: bool | None = None, timesteps: int | None = None,
                   neuron: str | None = None, name: str = "random") -> Network:
    """A small random integer network."""
    rng = _rng(rng)
    qmax = 2 ** (wbits - 1) - 1
    c_in = int(rng.integers(1, 3))
    hw = int(rng.integers(3, 9))
    input_shape = (c_in, hw, hw)
    T = int(timesteps if timesteps is not None else rng.integers(1, 7))
    shortcuts = bool(rng.random() < 0.5) if shortcuts is None else shortcuts
    layers: list[Layer] = []
    shapes = {INPUT: input_shape}
    scale = {INPUT: 128.0}
    n_spiking = int(rng.integers(1, max_layers))
    spatial = True
    for i in range(n_spiking + 1):
        kind = "encoding" if i == 0 else ("readout" if i == n_spiking else "spiking")
        source = INPUT if i == 0 else layers[-1].name
        src_shape = shapes[source]
        op = Dense() if kind == "readout" else _random_op(rng, src_shape, spatial)
        channels = int(rng.integers(2, 11)) if kind == "readout" else int(rng.integers(1, 6))
        out_shape = op.out_shape(channels, src_shape)   # an identity keeps its source's shape
        spatial = spatial and len(out_shape) == 3        # once flattened (dense), never spatial again
        projections = [Projection(source, op, _weights(rng, op.weight_shape(channels, src_shape), qmax, extremes))]
        if shortcuts and kind != "encoding":
            for earlier in [l for l in layers[:-1]]:
                if rng.random() < 0.5:
                    continue
                if shapes[earlier.name] == tuple(out_shape):
                    sc = Identity()
                elif len(out_shape) == 1:
                    sc = Dense()
                else:
                    continue
                projections.append(Projection(earlier.name, sc, _weights(
                    rng, sc.weight_shape(channels, shapes[earlier.name]), qmax, extremes)))
        layer_name = f"{kind[:3]}{i}"
        typical = _current_scale(projections, scale) * np.ones(channels)
        bias = np.round(rng.normal(0, 0.3, channels) * typical).astype(np.int64)
        if kind != "readout" and (neuron in CONVERTED or neuron == "converted"):
            nrn = str(rng.choice(CONVERTED)) if neuron == "converted" else neuron
            layer = Layer(layer_name, kind, tuple(out_shape), tuple(projections), bias, neuron=nrn,
                          scale_exp=rng.integers(-2, 8, channels), **_converted_fields(rng, nrn, typical))
            scale[layer_name] = 0.6 * (1 << layer.tables.ladder_steps) / 2 if nrn == "msat" else 0.6
        elif kind != "readout":
            nrn = neuron or str(rng.choice(NEURONS))
            theta_pos, theta_neg = _thresholds(rng, nrn, typical)
            layer = Layer(layer_name, kind, tuple(out_shape), tuple(projections), bias, neuron=nrn,
                          theta_pos=theta_pos, theta_neg=theta_neg, leak_shift=int(rng.integers(0, 4)),
                          scale_exp=rng.integers(-2, 8, channels))
            scale[layer_name] = 0.6
        else:
            layer = Layer(layer_name, kind, tuple(out_shape), tuple(projections), bias,
                          scale_exp=np.full(channels, int(rng.integers(-2, 8))))
        layers.append(layer)
        shapes[layer_name] = tuple(out_shape)
    return Network(name=name, input_shape=input_shape, timesteps=T, wbits=wbits, layers=tuple(layers))


# --------------------------------------------------------------------------- float checkpoints


class _Builder:
    def __init__(self, rng):
        self.rng = rng
        self.state = {}
        self.count = 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def tensor(self, key, array):
        import torch
        self.state[key] = torch.as_tensor(np.asarray(array, dtype=np.float32))

    def conv(self, c_in, c_out, k, stride, padding, gain=1.5):
        name = self.name("conv")
        fan_in = c_in * k * k
        self.tensor(f"{name}.weight", self.rng.normal(0, gain / np.sqrt(fan_in), (c_out, c_in, k, k)))
        bias = bool(self.rng.random() < 0.5)
        if bias:
            self.tensor(f"{name}.bias", self.rng.normal(0, 0.2, c_out))
        return {"name": name, "type": "conv2d", "in_channels": c_in, "out_channels": c_out, "kernel_size": k,
                "stride": stride, "padding": padding, "bias": bias}

    def linear(self, f_in, f_out, gain=1.5):
        name = self.name("fc")
        self.tensor(f"{name}.weight", self.rng.normal(0, gain / np.sqrt(f_in), (f_out, f_in)))
        self.tensor(f"{name}.bias", self.rng.normal(0, 0.2, f_out))
        return {"name": name, "type": "linear", "in_features": f_in, "out_features": f_out, "bias": True}

    def bn(self, channels, kind):
        name = self.name("bn")
        self._bn_params(name, channels)
        return {"name": name, "type": kind, "num_features": channels, "eps": 1e-5}

    def _bn_params(self, prefix, channels, positive_gamma=True):
        gamma = self.rng.uniform(0.5, 1.5, channels)
        if not positive_gamma:
            gamma = gamma * self.rng.choice([-1.0, 1.0], channels)
        self.tensor(f"{prefix}.weight", gamma)
        self.tensor(f"{prefix}.bias", self.rng.normal(0, 0.2, channels))
        self.tensor(f"{prefix}.running_mean", self.rng.normal(0, 0.2, channels))
        self.tensor(f"{prefix}.running_var", self.rng.uniform(0.5, 2.0, channels))

    def lif(self, channels, neuron=None, mpbn=None, amplitude=None):
        name = self.name("lif")
        neuron = neuron or str(self.rng.choice(NEURONS))
        mpbn = bool(self.rng.random() < 0.3) if mpbn is None else mpbn
        amplitude = bool(self.rng.random() < 0.5) if amplitude is None else amplitude
        layer = {"name": name, "type": "lif", "neuron": neuron, "tau_shift": int(self.rng.integers(0, 4)),
                 "v_threshold": float(self.rng.choice([1.0, 0.5, 2.0, 0.75])), "amplitude": amplitude,
                 "mpbn": mpbn, "mpbn_eps": 1e-5}
        if amplitude:
            self.tensor(f"{name}.amplitude", np.float32(self.rng.uniform(0.5, 2.0)))
        if mpbn:
            self._bn_params(f"{name}.mpbn", channels)
        return layer


def _residual_block(b: "_Builder", rng, width: int, shape: tuple[int, int, int], neuron,
                    projection: bool | None) -> tuple[dict, int, tuple[int, int, int]]:
    """A residual block on a (width, H, W) spike map: (layer dict, output width, output shape).

    Identity shortcut: the body keeps the shape. Projection shortcut: 1×1 conv (+ BN) with
    stride 1 or 2 and possibly more channels, the body's first conv with the same stride.
    """
    projection = bool(rng.random() < 0.5) if projection is None else projection
    out, stride = width, 1
    if projection:
        out = width + int(rng.integers(0, 2))
        stride = 2 if shape[1] >= 6 and rng.random() < 0.5 else 1
    body = [b.conv(width, out, 3, stride, 1), b.bn(out, "batchnorm2d")]
    if rng.random() < 0.5:
        body += [b.lif(out, neuron), b.conv(out, out, 3, 1, 1)]
    shortcut = []
    if projection:
        shortcut = [b.conv(width, out, 1, stride, 0)]
        if rng.random() < 0.7:
            shortcut.append(b.bn(out, "batchnorm2d"))
    size = (shape[1] - 1) // stride + 1, (shape[2] - 1) // stride + 1
    block = {"name": b.name("res"), "type": "residual", "body": body, "shortcut": shortcut}
    return block, out, (out,) + size


def random_checkpoint(rng=None, *, residual: bool | None = None, normalization: bool | None = None,
                      pool: bool | None = None, neuron: str | None = None, timesteps: int | None = None,
                      input_shape: tuple[int, int, int] | None = None, blocks: int | None = None,
                      projection: bool | None = None) -> dict:
    """A random small checkpoint dict in the format of docs/checkpoint.md (untrained weights).

    With `residual`, `blocks` residual blocks (default: 1 to 3) follow the first layer; each has
    a projection shortcut if `projection`, an identity one if not; by default the first block
    has an identity shortcut and the others draw theirs.
    """
    rng = _rng(rng)
    b = _Builder(rng)
    c = int(rng.integers(1, 3))
    hw = int(rng.choice([6, 8]))
    if input_shape is not None:
        if input_shape[1] != input_shape[2]:
            raise ValueError(f"input_shape must be square, not {input_shape!r}")
        c, hw = int(input_shape[0]), int(input_shape[1])
    T = int(timesteps if timesteps is not None else rng.integers(1, 5))
    residual = bool(rng.random() < 0.5) if residual is None else residual
    normalization = bool(rng.random() < 0.5) if normalization is None else normalization
    pool = bool(rng.random() < 0.5) if pool is None else pool
    layers = []
    width = int(rng.integers(2, 5))
    padding = int(rng.integers(0, 2))
    layers.append(b.conv(c, width, 3, 1, padding, gain=1.0))
    shape = (width, hw + 2 * padding - 2, hw + 2 * padding - 2)
    if rng.random() < 0.7:
        layers.append(b.bn(width, "batchnorm2d"))
    layers.append(b.lif(width, neuron))
    if residual:
        # The first block draws from the main stream exactly what the one identity block drew
        # before projection shortcuts existed, and the blocks after it draw from a side stream:
        # the seeds that tests pin keep their networks unless a later block changes the shape.
        side = rng.spawn(1)[0]
        count = 1 + int(side.integers(0, 3)) if blocks is None else blocks
        for i in range(count):
            b.rng = rng if i == 0 else side
            block_projection = False if projection is None and i == 0 else projection
            block, width, shape = _residual_block(b, b.rng, width, shape, neuron, block_projection)
            layers.append(block)
            layers.append(b.lif(width, neuron))
        b.rng = rng
    if pool and shape[1] % 2 == 0:
        layers.append({"name": b.name("pool"), "type": "avgpool2d", "kernel_size": 2})
        layers.append(b.conv(width, width + 1, 3, 1, 1))
        width += 1
        layers.append(b.lif(width, neuron))
        layers.append({"name": b.name("pool"), "type": "avgpool2d", "kernel_size": 2})
        shape = (width, shape[1] // 4, shape[2] // 4)
    layers.append({"name": b.name("flat"), "type": "flatten"})
    features = int(np.prod(shape))
    hidden = int(rng.integers(4, 12))
    layers.append(b.linear(features, hidden))
    layers.append(b.lif(hidden, neuron))
    layers.append(b.linear(hidden, 10, gain=1.0))
    if rng.random() < 0.5:
        layers.append(b.bn(10, "batchnorm1d"))
    norm = None
    if normalization:
        # mean = k/255 keeps a padded conv exactly foldable (SPEC §2.3).
        norm = {"mean": [float(rng.integers(0, 256)) / 255 for _ in range(c)],
                "std": [float(rng.uniform(0.2, 0.5)) for _ in range(c)]}
    arch = {"input_shape": [c, hw, hw], "timesteps": T, "input_normalization": norm, "layers": layers}
    return {"format": "tern-checkpoint", "version": 1, "arch": arch, "state_dict": b.state,
            "meta": {"neuron": neuron or "mixed", "timesteps": T, "random": True}}
