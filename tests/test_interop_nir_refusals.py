"""Every NIR node or convention Tern cannot map exactly is refused in one line naming the node."""
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from gen.frontend import compile_dict
from gen.ir.golden import run
from gen.frontend.nir_import import Conventions, NirError, graph_to_checkpoint, read_nir

ROOT = Path(__file__).resolve().parent.parent
GE = Conventions(dt=1.0, if_gain="r_dt", fire="ge", timesteps=2, input_scale=1.0)
SHAPE = (2, 6, 6)


def _lif(**over):
    p = dict(tau=np.full(SHAPE, 4 / 3), r=np.full(SHAPE, 4 / 3), v_leak=np.zeros(SHAPE),
             v_threshold=np.full(SHAPE, 0.5), v_reset=np.zeros(SHAPE))
    p.update(over)
    return nir.LIF(**p)


def _graph(neuron=None, extra=None, edges=None):
    """Input [1,6,6] -> conv -> neuron -> flatten -> affine -> output, with one node swappable."""
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
             "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.integers(-8, 9, (2, 1, 3, 3)) / 4.0, stride=1,
                                padding=1, dilation=1, groups=1, bias=np.zeros(2)),
             "lif": neuron if neuron is not None else _lif(),
             "flat": nir.Flatten(input_type={"input": np.array(SHAPE)}, start_dim=0, end_dim=-1),
             "fc": nir.Affine(weight=rng.integers(-8, 9, (3, 72)) / 8.0, bias=np.zeros(3)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    nodes.update(extra or {})
    edges = edges or [("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_the_plain_graph_imports_and_runs():
    ir = compile_dict(graph_to_checkpoint(_graph(), GE)).network
    assert ir.layers[0].leak_shift == 2 and ir.layers[0].neuron == "binary"
    images = np.random.default_rng(1).integers(0, 256, (4, 1, 6, 6), dtype=np.uint8)
    assert run(ir, images).logits.shape == (4, 3)


def test_if_and_cuba_lif_with_tau_syn_dt_import():
    if_node = nir.IF(r=np.ones(SHAPE), v_threshold=np.full(SHAPE, 0.5), v_reset=np.zeros(SHAPE))
    assert graph_to_checkpoint(_graph(if_node), GE)["arch"]["layers"][1]["tau_shift"] == 0
    cuba = nir.CubaLIF(tau_syn=np.ones(SHAPE), tau_mem=np.full(SHAPE, 2.0), r=np.full(SHAPE, 2.0),
                       v_leak=np.zeros(SHAPE), v_threshold=np.full(SHAPE, 0.5), v_reset=np.zeros(SHAPE))
    assert graph_to_checkpoint(_graph(cuba), GE)["arch"]["layers"][1]["tau_shift"] == 1


REFUSALS = [
    ("leak not a power of two", dict(neuron=_lif(tau=np.full(SHAPE, 1.5), r=np.full(SHAPE, 1.5))),
     "node 'lif' (LIF) field 'tau'", "nearest: k = 2"),
    ("reset", dict(neuron=_lif(v_reset=np.full(SHAPE, 0.1))), "node 'lif' (LIF) field 'v_reset'", "reset to 0"),
    ("per-neuron threshold", dict(neuron=_lif(v_threshold=np.linspace(0.1, 1, 72).reshape(SHAPE))),
     "node 'lif' (LIF) field 'v_threshold'", "differs between neurons"),
    ("cuba tau_syn", dict(neuron=nir.CubaLIF(tau_syn=np.full(SHAPE, 2.0), tau_mem=np.full(SHAPE, 2.0),
                                             r=np.full(SHAPE, 2.0), v_leak=np.zeros(SHAPE),
                                             v_threshold=np.full(SHAPE, 0.5))),
     "node 'lif' (CubaLIF) field 'tau_syn'", "synaptic state"),
    ("threshold node", dict(neuron=nir.Threshold(threshold=np.full(SHAPE, 0.5))), "node 'lif' (Threshold)",
     "no Tern neuron"),
    ("delay", dict(neuron=nir.Delay(delay=np.ones(SHAPE))), "node 'lif' (Delay)", "delays"),
    ("leaky readout", dict(neuron=nir.LI(tau=np.full(SHAPE, 2.0), r=np.ones(SHAPE), v_leak=np.zeros(SHAPE))),
     "node 'lif' (LI)", "unequally"),
    ("grouped conv", dict(extra={"conv": nir.Conv2d(input_shape=(6, 6), weight=np.ones((2, 1, 3, 3)), stride=1,
                                                   padding=1, dilation=1, groups=2, bias=np.zeros(2))}),
     "node 'conv' (Conv2d) field 'groups'", "grouped"),
    ("dilation", dict(extra={"conv": nir.Conv2d(input_shape=(6, 6), weight=np.ones((2, 1, 3, 3)), stride=1,
                                               padding=2, dilation=2, groups=1, bias=np.zeros(2))}),
     "node 'conv' (Conv2d) field 'dilation'", "must be 1"),
    ("non-square kernel", dict(extra={"conv": nir.Conv2d(input_shape=(6, 6), weight=np.ones((2, 1, 3, 1)),
                                                        stride=1, padding=(1, 0), dilation=1, groups=1,
                                                        bias=np.zeros(2))}),
     "node 'conv' (Conv2d) field 'weight'", "square"),
    ("asymmetric padding", dict(extra={"conv": nir.Conv2d(input_shape=(6, 6), weight=np.ones((2, 1, 3, 3)),
                                                         stride=1, padding=(1, 0), dilation=1, groups=1,
                                                         bias=np.zeros(2))}),
     "node 'conv' (Conv2d) field 'padding'", "both spatial dimensions"),
    ("cycle", dict(edges=[("input", "conv"), ("conv", "lif"), ("lif", "conv"), ("lif", "flat"), ("flat", "fc"),
                          ("fc", "output")]), "node 'conv' (Conv2d)", "cycle"),
]


@pytest.mark.parametrize("what,graph_args,where,why", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal_names_node_field_and_reason(what, graph_args, where, why):
    with pytest.raises(NirError) as info:
        graph_to_checkpoint(_graph(**graph_args), GE)
    message = str(info.value)
    assert where in message and why in message and "\n" not in message


def test_strict_threshold_is_refused_with_the_reason():
    gt = Conventions(dt=1.0, if_gain="r_dt", fire="gt", timesteps=2, input_scale=1.0)
    with pytest.raises(NirError, match=r"node 'lif' \(LIF\) field 'v_threshold': fires on v > v_threshold"):
        graph_to_checkpoint(_graph(), gt)


def test_undeclared_conventions_are_refused_not_guessed(tmp_path):
    path = tmp_path / "bare.nir"
    nir.write(path, _graph())
    with pytest.raises(NirError, match="does not declare 'dt'"):
        read_nir(path)
    result = subprocess.run([sys.executable, "-m", "gen", "inspect", str(path), "--images", "0"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "does not declare 'dt'" in result.stderr and "Traceback" not in result.stderr
    ckpt = read_nir(path, convention="spikingjelly", dt=1.0, timesteps=2, input_scale="1")
    assert ckpt["meta"]["nir"] == {"dt": 1.0, "if_gain": "r_dt", "fire": "ge", "input_scale": 1.0}
