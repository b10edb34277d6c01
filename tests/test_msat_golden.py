"""The converted neurons (docs/msat.md §3) in the IR, the golden model, the float64 reference
and the bounds: random networks of if_subtract and msat layers (gen.ir.random_net), and small
hand-checked cases of each rule."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.ir import golden, irfile
from gen.ir.bounds import network_bounds
from gen.ir import Dense, Layer, Network, NeuronTables, Projection
from gen.ir.random_net import random_images, random_network
from gen.ir.reference import run_reference


def _check_equal(net, images):
    g = golden.run(net, images, record=True, record_membranes=True)
    r = run_reference(net, images)
    readout_scale = 2.0 ** -int(net.readout.scale_exp[0])
    assert np.array_equal(g.logits * readout_scale, r.logit_sums)
    assert np.array_equal(g.classes, r.classes)
    for name, spikes in g.spikes.items():
        assert np.array_equal(spikes, r.spikes[name]), name
    assert set(g.ladders) == set(r.ladders) == {l.name for l in net.layers if l.neuron == "msat"}
    for name, ladder in g.ladders.items():
        assert np.array_equal(ladder, r.ladders[name]), name
    return g


@settings(max_examples=40)
@given(seed=st.integers(0, 2 ** 32 - 1), timesteps=st.integers(1, 12),
       neuron=st.sampled_from(["if_subtract", "msat", "converted"]), extremes=st.booleans())
def test_golden_equals_float64_reference_for_converted_neurons(seed, timesteps, neuron, extremes):
    net = random_network(seed, neuron=neuron, timesteps=timesteps, extremes=extremes)
    images = random_images(seed, net.input_shape, 5)
    g = _check_equal(net, images)
    # Every membrane stays inside the interval gen.ir.bounds sized its register for.
    bounds = network_bounds(net)
    for name, u in g.membranes.items():
        for t, (lo, hi) in enumerate(bounds[name].membrane):
            assert lo <= int(u[:, t].min()) and int(u[:, t].max()) <= hi, (name, t)


@pytest.mark.parametrize("neuron,seed", [("msat", 1), ("if_subtract", 2), ("converted", 3)])
def test_the_protocol_horizon_t128_is_allowed_and_exact(neuron, seed):
    """T = 128 (the MSAT protocol's longest run, docs/msat.md §5) is within the IR's cap, a
    convention the hardware does not need; golden and float64 reference agree over all 128 steps
    and every membrane stays in its bounds."""
    from gen.ir import MAX_TIMESTEPS
    from snn.arch import MAX_TIMESTEPS as SNN_MAX_TIMESTEPS
    assert MAX_TIMESTEPS == SNN_MAX_TIMESTEPS == 128
    net = random_network(seed, neuron=neuron, timesteps=128, max_layers=3)
    g = _check_equal(net, random_images(seed, net.input_shape, 3))
    bounds = network_bounds(net)
    for name, u in g.membranes.items():
        lo, hi = min(b[0] for b in bounds[name].membrane), max(b[1] for b in bounds[name].membrane)
        assert lo <= int(u.min()) and int(u.max()) <= hi, name
    with pytest.raises(ValueError, match="timesteps"):
        random_network(seed, neuron=neuron, timesteps=MAX_TIMESTEPS + 1)


@settings(max_examples=15)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_converted_networks_round_trip_through_ir_files_as_version_2(seed, tmp_path_factory):
    net = random_network(seed, neuron="converted", timesteps=4)
    stem = tmp_path_factory.mktemp("ir") / "net"
    json_path, _ = irfile.save(net, stem)
    assert '"version": 2' in json_path.read_text()
    again = irfile.load(stem)
    images = random_images(seed, net.input_shape, 3)
    assert np.array_equal(golden.run(again, images).logits, golden.run(net, images).logits)
    assert irfile.model_id(again) == irfile.model_id(net)


def test_lif_networks_are_still_written_as_version_1(tmp_path):
    net = random_network(3, neuron="ternary", timesteps=2)
    json_path, _ = irfile.save(net, tmp_path / "net")
    assert '"version": 1' in json_path.read_text()
    assert '"tables"' not in json_path.read_text()


def _one_neuron_net(neuron, current, timesteps, **fields):
    """A 1-pixel network whose single neuron sees a constant current `current` (bias only)."""
    encoding = Layer("enc", "encoding", (1,), (Projection("input", Dense(), np.zeros((1, 1), np.int64)),),
                     np.array([current]), neuron=neuron, **fields)
    readout = Layer("out", "readout", (2,), (Projection("enc", Dense(), np.array([[1], [0]])),), np.zeros(2, np.int64))
    return Network("one", (1, 1, 1), timesteps, 8, (encoding, readout))


def test_if_subtract_rounds_the_rate_and_takes_back_only_what_it_gave():
    # A = 8, fires at U >= 4: a current of 3 per step (rate 3/8) gives +1 at t = 1, 3, 6 (U = 6, 5, 4 ...).
    net = _one_neuron_net("if_subtract", 3, 8, theta_pos=np.array([4]), theta_neg=np.array([-4]),
                          tables=NeuronTables(amplitude=np.array([8]), signed=True))
    s = golden.run(net, np.zeros((1, 1, 1, 1), np.uint8), record=True).spikes["enc"][0, :, 0]
    u, expected = 0, []
    for _ in range(8):
        u += 3
        expected.append(1 if u >= 4 else 0)
        u -= 8 * expected[-1]
    assert s.tolist() == expected and sum(expected) == 3
    # A negative current never fires −1 before a +1 (the balance is 0).
    net = _one_neuron_net("if_subtract", -5, 6, theta_pos=np.array([4]), theta_neg=np.array([-4]),
                          tables=NeuronTables(amplitude=np.array([8]), signed=True))
    assert not golden.run(net, np.zeros((1, 1, 1, 1), np.uint8), record=True).spikes["enc"].any()


def test_msat_ladder_follows_the_tables():
    # lut_x decides alone (lut_d = 0): I = 5 falls in cell floor(5 / 2^1) + H = 2 + 3 = 5 of 2H = 6.
    tables = NeuronTables(ladder_steps=2, lut_half=3, lut_d=np.zeros(6, np.int64),
                          lut_x=np.array([0, 0, 0, 0, 0, -50]), ladder_z=np.array([-10, -40]),
                          d_shift=np.array([0]), x_shift=np.array([1]))
    net = _one_neuron_net("msat", 5, 4, theta_pos=np.array([16]), tables=tables)
    g = golden.run(net, np.zeros((1, 1, 1, 1), np.uint8), record=True)
    # t = 0: m = 0 (θ = 16, U = 5: no spike); t ≥ 1: z = −50 < −10 and < −40: m = 2, θ = 4.
    assert g.ladders["enc"][0, :, 0].tolist() == [0, 2, 2, 2]
    # U: 5, 10 → spike (R 6), 11 → spike (R 7), 12 → spike (R 8)
    assert g.spikes["enc"][0, :, 0].tolist() == [0, 1, 1, 1]
    # each spike at rung 2 of M = 2 adds W << 0 = 1 to the readout's first logit
    assert g.logits[0].tolist() == [3, 0]


@pytest.mark.parametrize("tables, message", [
    (NeuronTables(ladder_steps=2, lut_half=1, lut_d=np.zeros(2, np.int64), lut_x=np.zeros(2, np.int64),
                  ladder_z=np.array([1, 2]), d_shift=np.zeros(1, np.int64), x_shift=np.zeros(1, np.int64)),
     "ladder_z must be strictly decreasing"),
    (NeuronTables(ladder_steps=3, lut_half=1, lut_d=np.zeros(2, np.int64), lut_x=np.zeros(2, np.int64),
                  ladder_z=np.array([3, 2, 1]), d_shift=np.zeros(1, np.int64), x_shift=np.zeros(1, np.int64)),
     "theta_pos must be a positive multiple of 2\\^ladder_steps = 8"),
])
def test_msat_layers_refuse_inconsistent_tables(tables, message):
    with pytest.raises(ValueError, match=message):
        _one_neuron_net("msat", 1, 2, theta_pos=np.array([4]), tables=tables)
