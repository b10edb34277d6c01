"""`python -m gen inspect`: the table, --json, --plots, and one-line errors with exit code 2."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gen.cli import main
from gen.ir.irfile import model_id, save
from gen.frontend import compile_dict
from gen.ir.random_net import random_checkpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "rand28.pt"
    torch.save(random_checkpoint(3, input_shape=(1, 28, 28), pool=True, residual=True, timesteps=2), path)
    return path


def test_inspect_json_reports_every_layer(model_path, capsys):
    assert main(["inspect", str(model_path), "--json", "--images", "20"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["timesteps"] == 2 and stats["wbits"] == 8 and stats["classes"] == 10
    kinds = [l["kind"] for l in stats["layers"]]
    assert kinds[0] == "encoding" and kinds[-1] == "readout" and set(kinds[1:-1]) == {"spiking"}
    for layer in stats["layers"]:
        assert layer["widths"]["current"] >= 2 and layer["fan_in"] > 0
        if layer["kind"] != "readout":
            assert 0 <= layer["firing_rate"] <= 1 and len(layer["events_per_step"]) == 2
    totals = stats["totals"]
    assert totals["images"] == 20 and totals["snn_sops_per_image"] > 0
    assert totals["ann_flops"] == sum(l["synapses"] for l in stats["layers"])
    assert 0 <= totals["integer_accuracy"] <= 1 and 0 <= totals["float_accuracy"] <= 1
    assert stats["model_id"] == model_id(compile_dict(torch.load(model_path, weights_only=True), name="rand28").network)


def test_inspect_table_and_plots(model_path, tmp_path):
    out = subprocess.run([sys.executable, "-m", "gen", "inspect", str(model_path), "--images", "10",
                          "--plots", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["layer", "kind", "neuron", "shape"]
    assert any(line.startswith("conv1 ") and "encoding" in line for line in lines)
    assert "SOPs per image" in out.stdout and "µJ" in out.stdout
    for name in ("membrane_histograms.png", "firing_rates.png"):
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_inspect_reads_an_ir_file_pair(model_path, tmp_path, capsys):
    net = compile_dict(torch.load(model_path, weights_only=True), name="rand28").network
    save(net, tmp_path / "rand28")
    assert main(["inspect", str(tmp_path / "rand28.json"), "--json", "--images", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["model_id"] == model_id(net)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gen", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_bad_model_is_one_line_and_exit_code_2(tmp_path):
    ckpt = random_checkpoint(3)
    ckpt["state_dict"]["conv1.weight"][0, 0, 0, 0] = float("inf")
    torch.save(ckpt, tmp_path / "bad.pt")
    out = run_cli("inspect", str(tmp_path / "bad.pt"), "--images", "0")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m gen inspect: error: ")
    assert "'conv1.weight'] holds NaN or infinite values" in lines[0]


def test_model_that_cannot_quantise_exactly_exits_2(tmp_path):
    ckpt = random_checkpoint(3, input_shape=(1, 28, 28), pool=True, residual=True, timesteps=2)
    ckpt["state_dict"]["conv1.weight"] *= 1e6   # far too large for θ = 0.5 to stay exact in 8 bits
    torch.save(ckpt, tmp_path / "huge.pt")
    out = run_cli("inspect", str(tmp_path / "huge.pt"), "--images", "0")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "layer 'conv1': channel" in lines[0] and "smallest that keeps θ⁺=" in lines[0], lines


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "checkpoint not found"),
    (lambda p: p.write_bytes(b"not a zip"), "is not a readable Tern checkpoint"),
    (lambda p: torch.save({"weight": torch.zeros(2)}, p), "is not a Tern checkpoint: format must be 'tern-checkpoint', not None"),
])
def test_unreadable_files_exit_2(tmp_path, capsys, setup, message):
    path = tmp_path / "m.pt"
    setup(path)
    assert main(["inspect", str(path), "--images", "0"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_images_must_fit_the_model(tmp_path, capsys):
    torch.save(random_checkpoint(2), tmp_path / "small.pt")   # 6×6 or 8×8 input
    assert main(["inspect", str(tmp_path / "small.pt"), "--images", "5"]) == 2
    assert "--images must be 0 for a model whose input is" in capsys.readouterr().err


def test_code_in_a_model_file_is_never_run(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"format": "tern-checkpoint", "payload": Evil()}, tmp_path / "evil.pt")
    assert main(["inspect", str(tmp_path / "evil.pt"), "--images", "0"]) == 2
    assert not marker.exists()
    assert "needs code to load, which is refused" in capsys.readouterr().err
