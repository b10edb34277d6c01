"""The README's flow, typed as a user would: from the repository root, with relative paths.

    python -m gen build MODEL --board pynq-z2 --out build/X
    python -m sim run build/X --images 2
    python -m sim infer build/X --images 2
    python -m gen deploy build/X

Each command is a subprocess with cwd = the repository root (the testbenches run in other
folders, so a path that is not made absolute at the CLI breaks here first). The model is a
small MNIST-shaped checkpoint (tests/test_host_board.py), so the whole flow, synthesis and
two simulations included, takes a few minutes; its folder under build/ is removed after.
"""
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from test_host_board import small_mnist_checkpoint

REPO = Path(__file__).resolve().parents[1]


def tern(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


@pytest.fixture
def folder():
    relative = Path("build") / f"test-readme-flow-{uuid.uuid4().hex[:8]}"
    (REPO / relative).mkdir(parents=True)
    try:
        yield relative
    finally:
        shutil.rmtree(REPO / relative, ignore_errors=True)


def test_the_readme_flow_runs_from_the_repository_root_with_relative_paths(folder):
    torch.save(small_mnist_checkpoint(), REPO / folder / "model.pt")
    out = folder / "out"

    built = tern("gen", "build", folder / "model.pt", "--board", "pynq-z2", "--out", out)
    assert built.returncode == 0, built.stderr
    assert (REPO / out / "manifest.json").is_file() and (REPO / out / "build_bitstream.tcl").is_file()

    simulated = tern("sim", "run", out, "--images", 2)
    assert simulated.returncode == 0, simulated.stderr
    assert simulated.stdout.startswith("2/2 images on verilator: bit-exact")
    report = json.loads((REPO / out / "sim_report.json").read_text())
    assert report["bit_exact"] and report["results"] == 2

    inferred = tern("sim", "infer", out, "--images", 2, "--json")
    assert inferred.returncode == 0, inferred.stderr
    result = json.loads(inferred.stdout)
    assert result["images"] == 2 and result["simulated"] and result["counters"]["images_out"] == 2
    assert Path(result["build"]) == (REPO / out).resolve()

    deployed = tern("gen", "deploy", out)
    assert deployed.returncode == 0, deployed.stderr
    assert (REPO / out / "deploy" / "manifest.json").is_file()
    assert json.loads((REPO / out / "deploy" / "manifest.json").read_text())["model"]["model_id"] == \
        json.loads((REPO / out / "manifest.json").read_text())["model"]["model_id"]
