"""Issue 12, PyTorch side: bad and hostile input through the real CLIs, as a user types it.

Every case runs `python -m snn ...` (or `python -m gen inspect` for gen's load of the same
file) as a subprocess from the repository root with a relative path, and checks: exactly one
line on stderr, no traceback, no torch hint to re-run with weights_only=False, the right exit
code, the file named, and nothing half-written left behind.
"""
import copy
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from snn.checkpoint import checkpoint_dict, save_checkpoint
from snn.model import build_model

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TORCH_HINTS = ("weights_only=False", "weights_only` set to `False", "will likely succeed", "Traceback")


def tiny_arch(timesteps=2):
    return {"input_shape": [1, 28, 28], "timesteps": timesteps, "input_normalization": None, "layers": [
        {"name": "conv1", "type": "conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3,
         "stride": 2, "padding": 1},
        {"name": "bn1", "type": "batchnorm2d", "num_features": 2},
        {"name": "lif1", "type": "lif", "mpbn": True},
        {"name": "flatten", "type": "flatten"},
        {"name": "fc", "type": "linear", "in_features": 2 * 14 * 14, "out_features": 10}]}


def run(*args, timeout=180):
    return subprocess.run([PYTHON, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def relative(path: Path) -> str:
    return os.path.relpath(path, ROOT)


def assert_one_line_error(result, code: int, *fragments: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert not any(hint in result.stderr for hint in TORCH_HINTS), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


class _RunsCode:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _edited(good: dict, edit) -> dict:
    ckpt = copy.deepcopy(good)
    ckpt["state_dict"] = {k: v.double() for k, v in ckpt["state_dict"].items()}  # float64 holds 1e308, 1e-40
    edit(ckpt)
    return ckpt


# name -> (how to make the file from the good checkpoint dict, exit code, fragments of the message)
BAD_CHECKPOINTS = {
    "negative_variance": (lambda c: c["state_dict"]["bn1.running_var"].__setitem__(1, -0.25),
                          "is a variance and must be >= 0 (layer 'bn1', parameter 'running_var'"),
    "negative_mpbn_variance": (lambda c: c["state_dict"]["lif1.mpbn.running_var"].__setitem__(0, -1.0),
                               "(layer 'lif1', parameter 'mpbn.running_var'"),
    "huge_float64": (lambda c: c["state_dict"]["fc.weight"].__setitem__((0, 0), 1e308),
                     "holds a value beyond ±1e+12 (layer 'fc', parameter 'weight'"),
    "subnormal": (lambda c: c["state_dict"]["bn1.weight"].__setitem__(0, 1e-40),
                  "holds a subnormal value", "(layer 'bn1', parameter 'weight'"),
    "nan": (lambda c: c["state_dict"]["conv1.weight"].view(-1).__setitem__(5, float("nan")),
            "holds NaN or infinite values (layer 'conv1', parameter 'weight': element 5 is nan)"),
    "timesteps_1e6": (lambda c: c["arch"].update(timesteps=10 ** 6),
                      "timesteps must be an int between 1 and 128, not 1000000"),
    "input_70000": (lambda c: c["arch"].update(input_shape=[1, 70000, 70000]),
                    "input_shape [1, 70000, 70000] is too large: at most 4096 channels and 2048x2048 pixels"),
    "channels_1e5": (lambda c: c["arch"]["layers"][0].update(out_channels=10 ** 5),
                     "layer 'conv1' field 'out_channels' must be an int between 1 and 4096, not 100000"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    model = build_model(tiny_arch()).eval()
    good = save_checkpoint(model, folder / "good.pt", {"neuron": "ternary"})
    ckpt = checkpoint_dict(model, {})
    made = {"good": good}
    for name, (edit, *_) in BAD_CHECKPOINTS.items():
        made[name] = folder / f"{name}.pt"
        torch.save(_edited(ckpt, edit), made[name])
    marker = folder / "code_ran"
    made["marker"] = marker
    made["pickle_runs_code"] = folder / "evil_pickle.pt"
    made["pickle_runs_code"].write_bytes(pickle.dumps({"format": "tern-checkpoint", "x": _RunsCode(marker)}, 4))
    made["torch_save_runs_code"] = folder / "evil_torch.pt"
    torch.save({"format": "tern-checkpoint", "x": _RunsCode(marker)}, made["torch_save_runs_code"])
    data = good.read_bytes()
    made["truncated"] = folder / "truncated.pt"
    made["truncated"].write_bytes(data[: len(data) // 2])
    made["cut_one_byte"] = folder / "cut.pt"
    made["cut_one_byte"].write_bytes(data[:-1])
    made["zip_not_torch"] = folder / "web.pt"
    with zipfile.ZipFile(made["zip_not_torch"], "w") as archive:
        archive.writestr("manifest.json", '{"manifest_version": 3}')
    made["tensor"] = folder / "tensor.pt"
    torch.save(torch.zeros(3), made["tensor"])
    made["state_dict"] = folder / "state_dict.pt"
    torch.save(model.state_dict(), made["state_dict"])
    made["empty"] = folder / "empty.pt"
    made["empty"].write_bytes(b"")
    made["text"] = folder / "notes.pt"
    made["text"].write_text("hello\n")
    made["folder"] = folder / "a_folder.pt"
    made["folder"].mkdir()
    made["missing"] = folder / "missing.pt"
    return made


LOADER_CASES = {
    "pickle_runs_code": "is a pickle (not a torch.save archive) that needs code to load, which is refused",
    "torch_save_runs_code": "is a torch.save archive that needs code to load, which is refused",
    "truncated": "is truncated or corrupt: not a complete zip archive",
    "cut_one_byte": "is truncated or corrupt: not a complete zip archive",
    "zip_not_torch": "is a zip archive but not a torch.save file",
    "tensor": "is not a Tern checkpoint: it holds a Tensor",
    "state_dict": "is not a Tern checkpoint: it is a bare PyTorch state_dict",
    "empty": "is empty",
    "text": "is not a readable Tern checkpoint",
    "folder": "is not a file",
    "missing": "checkpoint not found",
}


def test_the_good_checkpoint_evaluates(files):
    result = run("snn", "eval", relative(files["good"]), "--limit", "20")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "on held-out images 8000-8019" in result.stdout


# One case of each kind runs in the default tier (each call imports torch: seconds); all of them under -m slow.
QUICK = {"negative_variance", "timesteps_1e6", "torch_save_runs_code", "truncated", "zip_not_torch"}


def _cases(names):
    return [name if name in QUICK else pytest.param(name, marks=pytest.mark.slow) for name in names]


@pytest.mark.parametrize("name", _cases(sorted(BAD_CHECKPOINTS) + sorted(LOADER_CASES)))
def test_snn_eval_refuses_a_bad_checkpoint_in_one_line(files, name):
    path = relative(files[name])
    fragments = BAD_CHECKPOINTS[name][1:] if name in BAD_CHECKPOINTS else (LOADER_CASES[name],)
    line = assert_one_line_error(run("snn", "eval", path), 2, *fragments)
    assert line.startswith(f"python -m snn eval: error: {path}") or path in line
    assert not files["marker"].exists()


@pytest.mark.parametrize("name", _cases(["negative_variance", "huge_float64", "input_70000", "torch_save_runs_code",
                                         "truncated", "zip_not_torch"]))
def test_gen_reads_a_bad_checkpoint_through_the_same_checks(files, name):
    path = relative(files[name])
    fragments = BAD_CHECKPOINTS[name][1:] if name in BAD_CHECKPOINTS else (LOADER_CASES[name],)
    line = assert_one_line_error(run("gen", "inspect", path, "--images", "0"), 2, *fragments)
    assert line.startswith("python -m gen inspect: error: ") and path in line
    assert not files["marker"].exists()


def _train_args(out, *extra):
    return ("snn", "train", "--timesteps", "2", "--neuron", "ternary", "--out", out, "--epochs", "1",
            "--width", "2", "--train-limit", "64", "--heldout-limit", "20", "--quiet", *extra)


@pytest.mark.parametrize("timesteps", ["0", "129", "1000000", "two"])  # argparse: no torch import, fast
def test_train_refuses_timesteps_outside_the_hardware_limit(tmp_path, timesteps):
    out = tmp_path / "m.pt"
    result = run("snn", "train", "--timesteps", timesteps, "--neuron", "ternary", "--out", relative(out))
    assert_one_line_error(result, 2, "argument --timesteps: must be an int between 1 and 128", repr(timesteps))
    assert not out.exists()


def test_train_refuses_an_unwritable_out_before_training(tmp_path, files):
    cases = {
        "/proc/tern_model.pt": "cannot write /proc/tern_model.pt",             # a folder nobody can write
        relative(files["good"]) + "/model.pt": "is not a folder",              # a file where a folder should be
        relative(tmp_path): "is a folder; expected a checkpoint file name",
    }
    for out, fragment in cases.items():
        start = time.monotonic()
        assert_one_line_error(run(*_train_args(out)), 2, fragment)
        assert time.monotonic() - start < 120  # refused up front, not after training


def test_train_with_missing_or_corrupt_data_names_the_file_and_writes_nothing(tmp_path):
    out = tmp_path / "sub" / "m.pt"
    assert_one_line_error(run(*_train_args(relative(out), "--data", relative(tmp_path / "nope"))), 2,
                          "data directory not found: ")
    corrupt = tmp_path / "mnist"
    corrupt.mkdir()
    (corrupt / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    (corrupt / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    assert_one_line_error(run(*_train_args(relative(out), "--data", relative(corrupt))), 2,
                          "t10k-images-idx3-ubyte.gz is not a readable gzip file")
    assert not out.exists()


@pytest.mark.slow
def test_eval_with_corrupt_data_names_the_file(tmp_path, files):
    corrupt = tmp_path / "mnist"
    corrupt.mkdir()
    (corrupt / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    assert_one_line_error(run("snn", "eval", relative(files["good"]), "--data", relative(corrupt)), 2,
                          "t10k-images-idx3-ubyte.gz is not a readable gzip file")


def test_ctrl_c_during_training_prints_one_line_exits_130_and_leaves_nothing(tmp_path):
    out = tmp_path / "m.pt"
    args = _train_args(relative(out))
    args = args[:args.index("--epochs")] + ("--epochs", "1000") + args[args.index("--epochs") + 2:]
    process = subprocess.Popen([PYTHON, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # imports done, training under way (1000 epochs take far longer)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(args, process.returncode, "", stderr)
    assert_one_line_error(result, 130, "python -m snn train: interrupted (Ctrl-C)")
    assert list(tmp_path.iterdir()) == []
