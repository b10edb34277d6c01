"""NIR import and export (gen.frontend.nir_import, gen.backend.nir_export, `python -m gen export`): exact or refused.

The interop extra is pinned and installed by setup.sh, so `nir` is imported plainly: a
missing package fails here rather than skipping.
"""
import functools
import os
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from gen.cli import main as gen_main
from gen.frontend import compile_checkpoint, compile_dict
from gen.ir.golden import run
from gen.backend.nir_export import network_to_graph, write_graph
from gen.frontend.nir_import import NirError, read_nir
from snn.data import load_mnist

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("mnist_binary_t2", "mnist_ternary_t2")


def _gen(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "gen", *args], cwd=cwd, capture_output=True, text=True)


def _gen_in_process(capsys, monkeypatch, *args):
    """The CLI's own entry point without a new interpreter (start-up is most of a subprocess's time)."""
    monkeypatch.chdir(ROOT)
    capsys.readouterr()
    code = gen_main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@functools.lru_cache(maxsize=None)
def _compiled(name):
    return compile_checkpoint(ROOT / "examples" / f"{name}.pt").network


# --------------------------------------------------------------------------- Tern -> NIR -> Tern


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each shipped example exported with the CLI, as a user types it (relative paths); one through a
    new interpreter, the other through the same entry point in-process (start-up is the cost)."""
    out = tmp_path_factory.mktemp("nir")
    for name in EXAMPLES:
        target = os.path.relpath(out / f"{name}.nir", ROOT)
        argv = ("export", f"examples/{name}.pt", "--nir", target)
        if name == EXAMPLES[0]:
            result = _gen(*argv)
            assert result.returncode == 0, result.stderr
        else:
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                assert gen_main(list(argv)) == 0
            finally:
                os.chdir(cwd)
        assert (out / f"{name}.nir").is_file() and not list(out.glob(".*.tmp"))
    return out


def _round_trip(exported, name, images):
    original = _compiled(name)
    back = compile_dict(read_nir(exported / f"{name}.nir"), name=name).network
    return run(original, images), run(back, images), original, back


@pytest.mark.parametrize("name", EXAMPLES)
def test_round_trip_keeps_golden_logits(exported, name):
    images, _ = load_mnist(split="heldout", limit=20)
    a, b, original, back = _round_trip(exported, name, images)
    assert np.array_equal(a.logits, b.logits) and np.array_equal(a.classes, b.classes)
    for la, lb in zip(original.layers, back.layers):  # the same integers, layer by layer
        assert np.array_equal(la.bias, lb.bias) and la.leak_shift == lb.leak_shift
        assert all(np.array_equal(p.weight, q.weight) for p, q in zip(la.projections, lb.projections))


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_round_trip_keeps_golden_logits_on_200_heldout_images(exported, name):
    images, _ = load_mnist(split="heldout", limit=200)
    a, b, _, _ = _round_trip(exported, name, images)
    assert np.array_equal(a.logits, b.logits)


@pytest.mark.parametrize("name", EXAMPLES)
def test_nir_package_reads_the_export(exported, name):
    graph = nir.read(exported / f"{name}.nir")
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert kinds == {"Input", "Conv2d", "LIF", "Flatten", "Affine", "Output"}
    assert graph.metadata["tern.format"] == "tern-nir"
    lifs = [n for n in graph.nodes.values() if isinstance(n, nir.LIF)]
    neuron = "ternary" if "ternary" in name else "binary"
    assert all(n.metadata["tern.neuron"] == neuron for n in lifs)
    assert ("tern.theta_neg" in lifs[0].metadata) == (neuron == "ternary")


def _simulate_export(graph, images, fire):
    """An independent float64 simulator of the exported graph (NIR formulas, Euler with dt = 1)."""
    import torch
    import torch.nn.functional as F
    order = ["input"]
    succ = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    while order[-1] != "output":
        order.append(succ[order[-1]][0])
    x = torch.tensor(images, dtype=torch.float64)
    state = {}
    total = 0
    T = int(graph.metadata["tern.timesteps"])
    for _ in range(T):
        h = x
        for name in order[1:-1]:
            node = graph.nodes[name]
            t = lambda a: torch.tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
            if isinstance(node, nir.Conv2d):
                h = F.conv2d(h, t(node.weight), t(node.bias), stride=tuple(node.stride), padding=tuple(node.padding))
            elif isinstance(node, nir.Flatten):
                h = h.reshape(h.shape[0], -1)
            elif isinstance(node, nir.Affine):
                h = h @ t(node.weight).T + t(node.bias)
            elif isinstance(node, nir.LIF):
                v = state.get(name, torch.zeros_like(h))
                v = v + (1.0 / t(node.tau)) * (t(node.v_leak) - v + t(node.r) * h)
                z = (v > t(node.v_threshold)) if fire == "gt" else (v >= t(node.v_threshold))
                state[name] = torch.where(z, t(node.v_reset), v)
                h = z.to(torch.float64)
        total = total + h
    return total.numpy()


@pytest.mark.parametrize("fire", ["gt", "ge"])
def test_binary_export_gives_tern_logits_under_both_threshold_conventions(exported, fire):
    graph = nir.read(exported / "mnist_binary_t2.nir")
    images, _ = load_mnist(split="heldout", limit=20)
    golden = run(_compiled("mnist_binary_t2"), images)
    sums = _simulate_export(graph, images, fire)
    scale = 2.0 ** int(graph.metadata["tern.readout_scale_exp"])
    assert np.array_equal(sums * scale, golden.logits.astype(np.float64))


def test_build_and_inspect_read_a_nir_file(exported):
    result = _gen("inspect", str(exported / "mnist_ternary_t2.nir"), "--images", "5")
    assert result.returncode == 0, result.stderr
    assert "integer accuracy" in result.stdout and "conv1" in result.stdout


def test_export_refuses_a_nir_input_and_names_it(exported, tmp_path, capsys, monkeypatch):
    result = _gen_in_process(capsys, monkeypatch, "export", str(exported / "mnist_binary_t2.nir"), "--nir", str(tmp_path / "x.nir"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "already a NIR graph" in result.stderr


def test_export_checkpoint_from_nir_with_declared_conventions(exported, tmp_path, capsys, monkeypatch):
    out = tmp_path / "back.pt"
    result = _gen_in_process(capsys, monkeypatch, "export", str(exported / "mnist_binary_t2.nir"), "--checkpoint", str(out))
    assert result.returncode == 0, result.stderr
    images, _ = load_mnist(split="heldout", limit=10)
    a = run(_compiled("mnist_binary_t2"), images)
    b = run(compile_checkpoint(out).network, images)
    assert np.array_equal(a.logits, b.logits)
