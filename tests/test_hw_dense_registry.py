"""The dense engine family in the registry (gen.engines.spiking_dense, readout_dense): found
under (kind, "dense"), never chosen by default, built through the checked factory from a
plan that asks for it, its stream names are the component's ports, and its cost model's
cycles are the engines' exact schedules."""
import numpy as np
import pytest

from gen.boards import get_board
from gen.backend.emit import build_engine
from gen.engines import DEFAULT_FAMILY, engine_families, engine_spec
from gen.engines.spiking_dense import SpikingDenseEngine, period_cycles
from gen.errors import FactoryError
from gen.ir import INPUT, Conv2d, Dense, Layer, Network, Projection
from gen.plan import make_plan
from hw.dense_conv import DenseConvLayer, schedule_cycles
from hw.dense_encoding import DenseEncodingLayer
from hw.dense_readout import DenseReadout, readout_cycles
from hw.geometry import ConvGeometry

BOARD = get_board("pynq-z2")


def network():
    """input (1, 8, 8) -> encoding conv (4, 8, 8) -> conv stride 2 (6, 4, 4) -> readout (3)."""
    rng = np.random.default_rng(0)

    def lif(name, shape, projection, kind="spiking"):
        c = shape[0]
        return Layer(name, kind, shape, (projection,), rng.integers(-2, 3, c), neuron="ternary",
                     theta_pos=np.full(c, 6), theta_neg=np.full(c, -6))
    enc = lif("enc", (4, 8, 8), Projection(INPUT, Conv2d(3, 1, 1), rng.integers(-7, 8, (4, 1, 3, 3))), "encoding")
    mid = lif("mid", (6, 4, 4), Projection("enc", Conv2d(3, 2, 1), rng.integers(-7, 8, (6, 4, 3, 3))))
    out = Layer("out", "readout", (3,), (Projection("mid", Dense(), rng.integers(-7, 8, (3, 96))),),
                rng.integers(-2, 3, 3))
    return Network("dense_chain", (1, 8, 8), 2, 4, (enc, mid, out))


def test_the_dense_family_is_registered_beside_the_event_one_and_not_the_default():
    """Which family a plan picks by default is gen.plan's choice; the registry's default stays event."""
    for kind in ("encoding", "spiking", "readout"):
        assert engine_families(kind) == ("dense", "event")
        assert engine_spec(kind).family == DEFAULT_FAMILY == "event"
    assert engine_spec("encoding", "dense").component is DenseEncodingLayer
    assert engine_spec("spiking", "dense").component is DenseConvLayer
    assert engine_spec("readout", "dense").component is DenseReadout


def test_a_plan_asking_for_dense_builds_the_dense_engines_through_the_checked_factory():
    net = network()
    plan = make_plan(net, BOARD, families={"enc": "dense", "mid": "dense", "out": "dense"})
    enc, mid, out = plan.layers
    assert (enc.engine, mid.engine, out.engine) == ("DenseEncodingLayer", "DenseConvLayer", "DenseReadout")
    for lp in plan.layers:
        spec = engine_spec(lp.kind, "dense")
        component = build_engine(net, lp, 0)
        assert type(component) is spec.component
        ports = dict(component.signature.members)
        assert spec.input_stream in ports and spec.output_stream in ports
        assert spec.stream_format == "map" and not spec.reads_events and not spec.sends_events
    g = ConvGeometry(4, 8, 8, 6, 3, 2, 1)
    assert mid.cycles == period_cycles(g, mid.lanes, 2) == \
        schedule_cycles(g, mid.lanes, steps=2, images=3) - schedule_cycles(g, mid.lanes, steps=2, images=2)
    assert out.cycles == readout_cycles(6, 16, 3, out.lanes, 2)
    assert enc.cycles == period_cycles(ConvGeometry(1, 8, 8, 4, 3, 1, 1), enc.lanes, 2)
    assert mid.estimate["dsps"] == 0 and mid.estimate["luts"] > 0 and mid.estimate["ffs"] > 0


class ForgetfulDenseEngine(SpikingDenseEngine):
    def arguments(self, layer, lp, wbits, timesteps, input_queue_depth):
        args = super().arguments(layer, lp, wbits, timesteps, input_queue_depth)
        del args["leak_shift"]
        return dict(args, buffer_depth=4)


def test_a_wrong_dense_factory_is_an_error():
    net = network()
    lp = make_plan(net, BOARD, families={"mid": "dense"}).layers[1]
    with pytest.raises(FactoryError, match=r"unknown arguments \['buffer_depth'\], missing arguments \['leak_shift'\]"):
        ForgetfulDenseEngine().build(net.layer("mid"), lp, net.wbits, net.timesteps)


def test_more_lanes_cost_more_luts_and_fewer_cycles_until_the_input_rate_binds():
    net = network()
    rows = []
    for lanes in (1, 2, 3, 6):
        lp = make_plan(net, BOARD, families={"mid": "dense"}, lanes={"mid": lanes}).layers[1]
        rows.append((lanes, lp.estimate["luts"], lp.cycles))
    luts = [r[1] for r in rows]
    cycles = [r[2] for r in rows]
    assert luts == sorted(luts) and cycles == sorted(cycles, reverse=True)
    assert cycles[-1] >= 2 * 8 * 8      # never below T·H·W input beats


@pytest.mark.slow
def test_the_dense_conv_estimate_stays_above_synthesis_and_near_it(tmp_path):
    """yosys synth_xilinx of a small DenseConvLayer (T = 2: with its membranes) against the
    cost model: LUTs and FFs above synthesis and within 2x of it, BRAM as mapped."""
    from amaranth.back import rtlil

    from gen.engines.spiking_dense import SPEC, dense_context
    from gen.backend.synth import count_cells, synthesise_module
    from sim.tb.reference import layer_parameters, layer_widths

    g = ConvGeometry(4, 8, 8, 8, 3, 1, 1)
    p = {"weight_width": 4, "weight_style": "random", "weight_seed": 2, "kind": "ternary"}
    weights, bias, theta_pos, theta_neg = layer_parameters(g, p)
    cw, mw = layer_widths(weights, bias, theta_pos, theta_neg, 2, 2)
    layer = DenseConvLayer(g, weights, bias, theta_pos, theta_neg, leak_shift=2, steps=2, kind="ternary", lanes=4,
                           weight_width=4, current_width=cw, membrane_width=mw)
    il = tmp_path / "dense_conv_small.il"
    il.write_text(rtlil.convert(layer, name="dense_conv_small", emit_src=False))
    cells, _ = synthesise_module("dense_conv_small", [il], [], tmp_path / "synth", tmp_path)
    synth = count_cells(cells)
    ctx = dense_context(g, 4, {"accumulator_bits": cw, "membrane_bits": mw}, 2, 4, weights=weights)
    estimate = SPEC.estimate(ctx, SPEC.memories(ctx))
    for key in ("luts", "ffs"):
        assert synth[key] <= estimate[key] <= 2 * synth[key], (key, synth, estimate)
    assert estimate["bram36"] == synth["bram36"] and synth["dsps"] == 0


def test_the_dense_engines_refuse_neurons_their_lif_unit_does_not_have():
    from types import SimpleNamespace

    from gen.errors import PlanError
    net = network()
    for name in ("enc", "mid"):
        layer = net.layer(name)
        odd = SimpleNamespace(name=name, projections=layer.projections, neuron="if_subtract")  # any other neuron
        spec = engine_spec(layer.kind, "dense")
        with pytest.raises(PlanError, match=f"^layer {name!r}: .*if_subtract") as info:
            spec.check_layer(odd, f"layer {name!r}: ")
        assert spec.name in str(info.value) and "ternary" in str(info.value)
