"""Hand-written NIR graphs of every node kind Tern imports: golden logits = an independent float64
run of the graph (tests/nir_reference.py, NIR's own semantics) after Tern's fake-quantisation.

Each graph is built from the `nir` package's node classes, imported with gen.frontend.nir_import, compiled
and run by the golden model on held-out MNIST images. The reference never calls Tern: it walks the
NIR graph itself, with weights put on Tern's grid by its own reading of SPEC §3. Gains between a
weighted node and its neuron (Scale, r·dt/τ, w_in, pools, amplitudes) are powers of two, so that
the reference can move them across the rounding exactly.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from gen.ir import irfile
from gen.frontend import compile_dict
from gen.ir.golden import run
from gen.backend.nir_export import network_to_graph
from gen.frontend.nir_import import Conventions, graph_to_checkpoint
from snn.data import load_mnist
from nir_reference import fake_quantise, simulate

ROOT = Path(__file__).resolve().parent.parent
T = 3
CONV = Conventions(dt=1.0, if_gain="r_dt", fire="ge", timesteps=T, input_scale=1.0)  # raw pixels in


def _rng(seed):
    return np.random.default_rng(seed)


def _conv(rng, cin, cout, k, stride, padding, hw, scale):
    return nir.Conv2d(input_shape=hw, weight=rng.normal(0, scale, (cout, cin, k, k)), stride=stride,
                      padding=padding, dilation=1, groups=1, bias=rng.normal(0, scale, cout))


def _lif(shape, theta=1.0, tau=2.0, r=2.0):
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, r), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, theta), v_reset=np.zeros(shape))


def _if(shape, theta=1.0, r=1.0):
    return nir.IF(r=np.full(shape, r), v_threshold=np.full(shape, theta), v_reset=np.zeros(shape))


def _flatten(shape):
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)


def pools_scales_linear():
    """Conv2d, Scale (per channel, after a conv), LIF, SumPool2d, IF (r = 1/2), Scale (amplitude),
    AvgPool2d, Flatten, Linear (no bias)."""
    rng = _rng(1)
    s1, s2 = (4, 28, 28), (6, 14, 14)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 28, 28])}),
             "conv1": _conv(rng, 1, 4, 3, 1, 1, (28, 28), 0.002),
             "gain1": nir.Scale(scale=np.broadcast_to(np.array([2.0, 0.5, 1.0, 4.0])[:, None, None], s1).copy()),
             "lif1": _lif(s1),
             "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "conv2": _conv(rng, 4, 6, 3, 1, 1, (14, 14), 0.4),
             "if2": _if(s2, r=0.5),
             "amp": nir.Scale(scale=np.full(s2, 0.5)),
             "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "flat": _flatten((6, 7, 7)),
             "fc": nir.Linear(weight=rng.normal(0, 0.3, (10, 6 * 7 * 7))),
             "output": nir.Output(output_type={"output": np.array([10])})}
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), type_check=False)


def cuba_and_integrator_readout():
    """Flatten, Affine, CubaLIF (τ_syn = dt, per-channel w_in), Affine and an I readout."""
    rng = _rng(2)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 28, 28])}),
             "flat": _flatten((1, 28, 28)),
             "fc1": nir.Affine(weight=rng.normal(0, 0.0015, (32, 784)), bias=rng.normal(0, 0.1, 32)),
             "cuba": nir.CubaLIF(tau_syn=np.ones(32), tau_mem=np.full(32, 2.0), r=np.full(32, 2.0),
                                 v_leak=np.zeros(32), v_threshold=np.full(32, 0.5), v_reset=np.zeros(32),
                                 w_in=np.tile([1.0, 2.0, 0.5, 1.0], 8)),
             "fc2": nir.Affine(weight=rng.normal(0, 0.5, (10, 32)), bias=rng.normal(0, 0.1, 10)),
             "readout": nir.I(r=np.full(10, 0.5)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), type_check=False)


def residual_fan_in():
    """A fan-in: conv → IF, then a body conv → LIF → conv whose output and the IF's spikes are summed
    by the next neuron (an identity shortcut), then Flatten, Affine."""
    rng = _rng(3)
    s = (4, 14, 14)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 28, 28])}),
             "conv1": _conv(rng, 1, 4, 3, 2, 1, (28, 28), 0.004),
             "if1": _if(s),
             "conv_a": _conv(rng, 4, 4, 3, 1, 1, (14, 14), 0.5),
             "lif_a": _lif(s),
             "conv_b": _conv(rng, 4, 4, 3, 1, 1, (14, 14), 0.5),
             "join": _if(s),
             "flat": _flatten(s),
             "fc": nir.Affine(weight=rng.normal(0, 0.2, (10, 784)), bias=rng.normal(0, 0.1, 10)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "conv_a"), ("conv_a", "lif_a"), ("lif_a", "conv_b"),
             ("conv_b", "join"), ("if1", "join"), ("join", "flat"), ("flat", "fc"), ("fc", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def projection_shortcut():
    """A fan-in whose shortcut is a 1×1 Conv2d of stride 2 and a per-channel Scale (a folded BN):
    a Tern residual block with a projection shortcut."""
    rng = _rng(5)
    s1, s2 = (4, 14, 14), (6, 7, 7)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 28, 28])}),
             "conv1": _conv(rng, 1, 4, 3, 2, 1, (28, 28), 0.004),
             "if1": _if(s1),
             "conv_a": _conv(rng, 4, 6, 3, 2, 1, (14, 14), 0.5),
             "lif_a": _lif(s2),
             "conv_b": _conv(rng, 6, 6, 3, 1, 1, (7, 7), 0.5),
             "proj": _conv(rng, 4, 6, 1, 2, 0, (14, 14), 0.5),
             "proj_bn": nir.Scale(scale=np.broadcast_to(np.array([1, 2, 0.5, 1, 2, 4.0])[:, None, None], s2).copy()),
             "join": _if(s2),
             "flat": _flatten(s2),
             "fc": nir.Affine(weight=rng.normal(0, 0.2, (10, 294)), bias=rng.normal(0, 0.1, 10)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "conv_a"), ("conv_a", "lif_a"), ("lif_a", "conv_b"),
             ("conv_b", "join"), ("if1", "proj"), ("proj", "proj_bn"), ("proj_bn", "join"), ("join", "flat"),
             ("flat", "fc"), ("fc", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


GRAPHS = {"pools_scales_linear": pools_scales_linear, "cuba_and_integrator_readout": cuba_and_integrator_readout,
          "residual_fan_in": residual_fan_in, "projection_shortcut": projection_shortcut}


@pytest.fixture(scope="module")
def images():
    return load_mnist(split="heldout", limit=20)[0]


@pytest.mark.parametrize("name", GRAPHS)
def test_golden_logits_equal_the_float64_nir_run_after_fake_quantisation(name, images):
    graph = GRAPHS[name]()
    ir = compile_dict(graph_to_checkpoint(graph, CONV), name=name).network
    golden = run(ir, images)
    quantised = fake_quantise(graph, dt=CONV.dt, if_gain=CONV.if_gain)
    outputs = simulate(quantised, images, dt=CONV.dt, timesteps=T, fire=CONV.fire, if_gain=CONV.if_gain)
    readout = graph.nodes["readout"] if "readout" in graph.nodes else None
    # Tern's golden logits are 2^e · Σ_t (readout current); an I readout holds r·dt · Σ_t of it at the end
    sums = outputs[-1] / (CONV.dt * float(np.asarray(readout.r).reshape(-1)[0])) if readout else sum(outputs)
    assert np.array_equal(sums * 2.0 ** int(ir.layers[-1].scale_exp.max()), golden.logits.astype(np.float64))
    # the check has teeth: quantisation moved the weights, and the network tells images apart
    moved = [not np.array_equal(np.asarray(graph.nodes[n].weight), np.asarray(quantised.nodes[n].weight))
             for n in graph.nodes if hasattr(graph.nodes[n], "weight")]
    assert all(moved)
    assert len(set(golden.classes.tolist())) > 2 and len(np.unique(golden.logits)) > 20


def test_residual_fan_in_maps_onto_a_tern_residual_block():
    ckpt = graph_to_checkpoint(residual_fan_in(), CONV)
    kinds = [layer["type"] for layer in ckpt["arch"]["layers"]]
    assert kinds == ["conv2d", "lif", "residual", "lif", "flatten", "linear"]
    body = ckpt["arch"]["layers"][2]["body"]
    assert [layer["type"] for layer in body] == ["conv2d", "lif", "conv2d"]


def test_projection_shortcut_maps_onto_a_residual_block_and_round_trips(images):
    ckpt = graph_to_checkpoint(projection_shortcut(), CONV)
    block = ckpt["arch"]["layers"][2]
    assert block["type"] == "residual" and [layer["type"] for layer in block["shortcut"]] == ["conv2d"]
    assert block["shortcut"][0]["kernel_size"] == 1 and block["shortcut"][0]["stride"] == 2
    ir = compile_dict(ckpt, name="proj").network
    back = compile_dict(graph_to_checkpoint(network_to_graph(ir), CONV), name="proj").network  # Tern → NIR → Tern
    for la, lb in zip(ir.layers, back.layers):
        assert np.array_equal(la.bias, lb.bias) and len(la.projections) == len(lb.projections)
        assert all(np.array_equal(p.weight, q.weight) for p, q in zip(la.projections, lb.projections))
    assert np.array_equal(run(ir, images).logits, run(back, images).logits)


# --------------------------------------------------------------------------- the CLI, end to end


def _tiny_graph():
    """Conv2d (stride 2) → IF → Flatten → Affine, declaring its conventions as metadata."""
    rng = _rng(4)
    s = (2, 14, 14)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 28, 28])}),
             "conv": _conv(rng, 1, 2, 3, 2, 1, (28, 28), 0.004),
             "if1": _if(s),
             "flat": _flatten(s),
             "fc": nir.Affine(weight=rng.normal(0, 0.2, (10, 392)), bias=rng.normal(0, 0.1, 10)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    order = list(nodes)
    metadata = {"tern.dt": 1.0, "tern.if_gain": "r_dt", "tern.fire": "ge", "tern.timesteps": 2,
                "tern.input_scale": 1.0}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), type_check=False, metadata=metadata)


def _build(tmp_path, *options):
    """`python -m gen build tiny.nir --board pynq-z2 --out …` from the repository root, relative paths."""
    nir.write(tmp_path / "tiny.nir", _tiny_graph())
    model, out = os.path.relpath(tmp_path / "tiny.nir", ROOT), os.path.relpath(tmp_path / "build", ROOT)
    result = subprocess.run([sys.executable, "-m", "gen", "build", model, "--board", "pynq-z2", "--out", out,
                             "--images", "0", *options], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return tmp_path / "build"


def _check_build(build, images):
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["format"] == "tern-build" and manifest["timesteps"] == 2 and manifest["classes"] == 10
    assert manifest["input"]["shape"] == [1, 28, 28] and manifest["model"]["name"] == "tiny"
    assert [layer["name"] for layer in manifest["layers"]] == ["conv", "fc"]
    ir = irfile.load(build / "steps" / "03_ir" / "model")
    assert manifest["model"]["model_id"] == irfile.model_id(ir)
    golden = run(ir, images)
    graph = _tiny_graph()
    sums = sum(simulate(fake_quantise(graph), images, dt=1.0, timesteps=2))
    assert np.array_equal(sums * 2.0 ** int(ir.layers[-1].scale_exp.max()), golden.logits.astype(np.float64))
    assert len(set(golden.classes.tolist())) > 1


def test_gen_build_of_a_nir_file_writes_the_manifest_and_the_ir_of_its_golden_logits(tmp_path, images):
    build = _build(tmp_path, "--no-synth")  # synthesis takes minutes on 2 shared cores: the slow test has it
    _check_build(build, images)
    assert (build / "rtl" / "tern_top.v").is_file()


@pytest.mark.slow
def test_gen_build_of_a_nir_file_with_synthesis(tmp_path, images):
    build = _build(tmp_path)
    _check_build(build, images)
    assert json.loads((build / "report.json").read_text())["resources"]
