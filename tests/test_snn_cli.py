"""`python -m snn train|eval` on real images (a few of them), and the import rule."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from snn.checkpoint import read_checkpoint
from snn.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tiny.pt"
    argv = ["train", "--timesteps", "2", "--neuron", "binary", "--out", str(out), "--epochs", "1",
            "--width", "4", "--train-limit", "128", "--heldout-limit", "100", "--batch-size", "64", "--quiet"]
    assert main(argv) == 0
    return out, argv


def test_train_writes_a_checkpoint_with_its_facts(trained, capsys):
    out, argv = trained
    ckpt = read_checkpoint(out)
    meta = ckpt["meta"]
    assert meta["neuron"] == "binary" and meta["timesteps"] == 2 and meta["epochs"] == 1
    assert meta["split"] == {"train": [0, 8000], "heldout": [8000, 10000]}
    assert meta["command"] == "python -m snn " + " ".join(argv)
    assert meta["heldout_images"] == 100 and 0.0 <= meta["heldout_accuracy"] <= 1.0
    assert len(meta["history"]) == 1 and meta["train_config"]["train_limit"] == 128
    assert all(layer["neuron"] == "binary" for layer in ckpt["arch"]["layers"] if layer["type"] == "lif")
    assert 0.0 <= meta["heldout_first_200_accuracy"] <= 1.0


def test_eval_prints_accuracy_and_json(trained, capsys):
    out, _ = trained
    assert main(["eval", str(out), "--limit", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 50 and result["range"] == [8000, 8050]
    assert result["correct"] == round(result["accuracy"] * 50)
    assert main(["eval", str(out), "--limit", "50"]) == 0
    assert "on held-out images 8000-8049" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m snn eval: error: ") and err.count("\n") == 1
    assert "not a readable Tern checkpoint" in err
    assert main(["eval", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["train", "--timesteps", "2", "--neuron", "ternary", "--out", str(tmp_path / "x.pt"),
                 "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m snn train: error: data file not found: ") and "t10k-images-idx3-ubyte.gz" in err
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(SystemExit) as info:
        main(["train", "--timesteps", "0", "--neuron", "ternary", "--out", "x.pt"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err == "python -m snn train: error: argument --timesteps: must be an int between 1 and 128, not '0' (see --help)\n"


def test_cli_timestep_limit_is_the_hardware_limit():
    from gen.ir import MAX_TIMESTEPS as GEN_MAX_TIMESTEPS
    from snn.arch import MAX_TIMESTEPS
    assert MAX_TIMESTEPS == GEN_MAX_TIMESTEPS
    with pytest.raises(SystemExit):
        main(["train", "--timesteps", str(MAX_TIMESTEPS + 1), "--neuron", "ternary", "--out", "x.pt"])


def test_module_entry_point_and_help():
    result = subprocess.run([sys.executable, "-m", "snn", "train", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert "--timesteps" in result.stdout and "images 0-7999" in result.stdout


def test_importing_snn_and_its_torch_free_modules_does_not_import_torch():
    code = ("import sys, snn, snn.data, snn.arch, snn.zoo, snn.checkpoint; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
