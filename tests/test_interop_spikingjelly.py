"""SpikingJelly 2 <-> Tern: the neuron mapping, a SpikingJelly-exported net built by Tern, and
SpikingJelly's importer running Tern's export. SpikingJelly is pinned in setup.sh: no skipping."""
import nir
import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir

from gen.frontend.floatnet import parse_checkpoint, run_float
from gen.frontend import compile_checkpoint, compile_dict
from gen.ir.golden import run
from gen.backend.nir_export import network_to_graph
from gen.frontend.nir_import import Conventions, graph_to_checkpoint
from snn.data import load_mnist
from snn.neuron import BinaryLIF, TernaryLIF
from snn.spikingjelly import SpikingJellyError, checkpoint_from_spikingjelly


def _dyadic_currents(seed, shape=(3, 4000)):
    """Currents on a 1/8 grid: ties with the thresholds happen often, as after quantisation."""
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.integers(-12, 13, size=shape) / 8.0, dtype=torch.float64)


@pytest.mark.parametrize("theta", [0.5, 0.75])
def test_ternary_lif_node_tau_4_3_equals_tern_ternary_lif_with_double_threshold(theta):
    x = _dyadic_currents(0)
    sj = neuron.TernaryLIFNode(tau=4.0 / 3.0, decay_input=False, v_reset=0.0, v_threshold=theta, step_mode="m")
    tern = TernaryLIF(tau_shift=2, v_threshold=2 * theta)
    with torch.no_grad():
        assert torch.equal(sj(x), tern(x))
    assert (tern(x) != 0).any() and (tern(x) == -1).any()


@pytest.mark.parametrize("tau,k", [(2.0, 1), (8.0 / 7.0, 3)])
def test_lif_node_other_power_of_two_leaks_equal_tern_binary_lif(tau, k):
    x = _dyadic_currents(1)
    sj = neuron.LIFNode(tau=tau, decay_input=False, v_reset=0.0, v_threshold=0.5, step_mode="m")
    with torch.no_grad():
        assert torch.equal(sj(x), BinaryLIF(tau_shift=k, v_threshold=1.0)(x))


def _sj_net(seed):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        layer.Conv2d(1, 8, 3, padding=1), neuron.LIFNode(tau=4.0 / 3.0, decay_input=False, v_reset=0.0),
        layer.Conv2d(8, 8, 3, stride=2, padding=1), neuron.LIFNode(tau=4.0 / 3.0, decay_input=False, v_reset=0.0),
        layer.Flatten(), layer.Linear(8 * 14 * 14, 10))
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[2].weight.mul_(3.0)
    functional.set_step_mode(net, "m")
    return net.double()


def _load_fake_quantised(net, ir):
    """Put the IR's W_int/2^e into the SpikingJelly modules (its input is then the raw pixel)."""
    mods = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for module, lay in zip(mods, ir.layers):
        inv = np.ldexp(1.0, -lay.scale_exp.astype(np.int64))
        w = lay.projections[0].weight * inv.reshape((-1,) + (1,) * (lay.projections[0].weight.ndim - 1))
        module.weight.data = torch.tensor(w, dtype=torch.float64)
        module.bias.data = torch.tensor(lay.bias * inv, dtype=torch.float64)


def test_spikingjelly_exported_net_builds_and_matches_its_fake_quantised_float64_run(tmp_path):
    net = _sj_net(0)
    path = tmp_path / "sj.nir"
    export_to_nir(net, torch.rand(2, 1, 1, 28, 28, dtype=torch.float64), save_path=path, dt=1e-4)
    graph = nir.read(path)  # SpikingJelly's own file; Tern is told its conventions explicitly
    conv = Conventions(dt=1e-4, if_gain="r_dt", fire="ge", timesteps=2, input_scale=1 / 255)
    ir = compile_dict(graph_to_checkpoint(graph, conv), name="sj").network
    assert [l.leak_shift for l in ir.layers[:-1]] == [2, 2] and ir.layers[0].neuron == "binary"
    images, _ = load_mnist(split="heldout", limit=20)
    golden = run(ir, images)
    _load_fake_quantised(net, ir)
    with torch.no_grad():
        x = torch.tensor(images, dtype=torch.float64).unsqueeze(0).repeat(2, 1, 1, 1, 1)
        functional.reset_net(net)
        sums = net(x).sum(0).numpy()
    assert np.array_equal(sums * 2.0 ** int(ir.layers[-1].scale_exp.max()), golden.logits.astype(np.float64))
    assert len(set(golden.classes.tolist())) > 1  # the net is not silent


def test_spikingjelly_importer_runs_terns_binary_export_with_terns_logits():
    ir = compile_checkpoint("examples/mnist_binary_t2.pt").network
    graph = network_to_graph(ir)
    module = import_from_nir(graph, dt=1.0, dtype=torch.float64)
    images, _ = load_mnist(split="heldout", limit=20)
    x = torch.tensor(images, dtype=torch.float64)
    state, total = None, 0
    with torch.no_grad():
        for _ in range(ir.timesteps):
            out, state = module(x, state)
            total = total + out
    expected = run(ir, images).logits.astype(np.float64)
    assert np.array_equal(total.numpy() * 2.0 ** int(ir.layers[-1].scale_exp.max()), expected)


def test_adapter_maps_a_ternary_spikingjelly_model_onto_tern():
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4),
        neuron.TernaryLIFNode(tau=4.0 / 3.0, decay_input=False, v_reset=0.0, v_threshold=0.5),
        layer.Conv2d(4, 4, 3, stride=2, padding=1), neuron.LIFNode(tau=2.0, decay_input=True, v_reset=0.0),
        layer.Flatten(), layer.Linear(4 * 14 * 14, 10)).double().eval()
    with torch.no_grad():
        net[1].running_var.fill_(0.5)
        net[1].running_mean.fill_(0.1)
    functional.set_step_mode(net, "m")
    ckpt = checkpoint_from_spikingjelly(net, input_shape=[1, 28, 28], timesteps=2)
    lifs = [l for l in ckpt["arch"]["layers"] if l["type"] == "lif"]
    assert [(l["neuron"], l["tau_shift"], l["v_threshold"]) for l in lifs] == [("ternary", 2, 1.0), ("binary", 1, 2.0)]
    images, _ = load_mnist(split="heldout", limit=8)
    tern = run_float(parse_checkpoint(ckpt), images)
    with torch.no_grad():
        functional.reset_net(net)
        x = (torch.tensor(images, dtype=torch.float64) / 255).unsqueeze(0).repeat(2, 1, 1, 1, 1)
        sj = net(x).mean(0).numpy()
    np.testing.assert_allclose(tern.logits, sj, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("module,fragment", [
    (neuron.LIFNode(tau=3.0, decay_input=False, v_reset=0.0), "not a power of two"),
    (neuron.LIFNode(tau=2.0, v_reset=None), "v_reset must be 0.0"),
    (neuron.IFNode(v_reset=0.25), "v_reset must be 0.0"),
])
def test_adapter_refuses_what_has_no_exact_mapping(module, fragment):
    net = torch.nn.Sequential(layer.Conv2d(1, 2, 3), module, layer.Flatten(), layer.Linear(2 * 26 * 26, 10))
    with pytest.raises(SpikingJellyError, match=fragment):
        checkpoint_from_spikingjelly(net)
