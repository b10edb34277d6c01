"""Bad and hostile input to `python -m sim` and `python -m host`, through the real CLIs.

Every case runs the command as a user would (a subprocess from the repository root, relative
paths) and must end with ONE line on stderr naming what was wrong, no traceback, the exit
code of docs/errors.md (2 bad input, 1 failure, 130 interrupted), and the build folder as
it was: nothing lost, nothing half-written. The build is a small MNIST-shaped model built
without synthesis; no case simulates an image (the interrupted ones stop in the compile).
"""
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from sim_cli import interrupt_when
from test_host_board import make_build, small_mnist_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def good_build():
    """A real build under the repository's build/ (so that paths can be relative), removed after."""
    root = Path("build") / f"test-hostile-{uuid.uuid4().hex[:8]}"
    (REPO / root).mkdir(parents=True)
    try:
        torch.save(small_mnist_checkpoint(), REPO / root / "model.pt")
        make_build(REPO / root / "model.pt", REPO / root / "good")
        yield root
    finally:
        shutil.rmtree(REPO / root, ignore_errors=True)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def variant(good_build: Path, name: str, change) -> Path:
    """A copy of the good build (relative path) whose manifest `change` edits."""
    target = good_build / name
    shutil.copytree(REPO / good_build / "good", REPO / target)
    path = REPO / target / "manifest.json"
    manifest = json.loads(path.read_text())
    result = change(manifest)
    path.write_text(result if isinstance(result, str) else json.dumps(manifest))
    return target


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def check_one_line(out, code: int, prefix: str, *fragments: str):
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(prefix), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def drop(keys):
    def change(m):
        parent = m
        for k in keys[:-1]:
            parent = parent[k]
        del parent[keys[-1]]
    return change


MANIFEST_CASES = {
    "version-99": (lambda m: m.update(version=99), "manifest version must be one of (1,), not 99"),
    "empty-rtl-list": (lambda m: m["files"].update(rtl=[]), "files.rtl must be a non-empty list of file names"),
    "rtl-a-string": (lambda m: m["files"].update(rtl="rtl/top.v"), "files.rtl must be a non-empty list"),
    "string-registers": (lambda m: m["registers"].update(registers="MAGIC=0"),
                         "field 'registers.registers' must be a list"),
    "string-offset": (lambda m: m["registers"]["registers"][0].update(offset="0"),
                      "registers.registers[0] must be"),
    "absolute-rtl": (lambda m: m["files"]["rtl"].__setitem__(0, "/etc/hosts"),
                     "files.rtl[0] must stay inside the build folder", "'/etc/hosts'"),
    "dotdot-rtl": (lambda m: m["files"]["rtl"].__setitem__(0, "../good/rtl/x.v"),
                   "must stay inside the build folder (relative, no '..')"),
    "dotdot-ir": (lambda m: m["files"].update(ir=["../../x.json"]), "files.ir[0] must stay inside the build folder"),
    "no-model-id": (drop(["model", "model_id"]), "field 'model.model_id' is missing"),
    "not-json": (lambda m: "{not json", "manifest.json"),
    "a-list": (lambda m: "[1, 2]", "format must be 'tern-build'"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_sim_run_refuses_a_bad_manifest_in_one_line(good_build, case):
    change, *fragments = MANIFEST_CASES[case]
    folder = variant(good_build, f"sim-{case}", change)
    before = snapshot(REPO / folder)
    out = run("sim", "run", folder, "--images", 1)
    check_one_line(out, 2, "python -m sim run: ", *fragments)
    assert snapshot(REPO / folder) == before


@pytest.mark.parametrize("case", sorted(set(MANIFEST_CASES) - {"dotdot-ir"}))
def test_host_infer_refuses_a_bad_manifest_in_one_line(good_build, case):
    change, *fragments = MANIFEST_CASES[case]
    folder = variant(good_build, f"host-{case}", change)
    before = snapshot(REPO / folder)
    out = run("sim", "infer", folder, "--images", 1)
    check_one_line(out, 2, "python -m sim infer: ", *fragments)
    assert snapshot(REPO / folder) == before


def test_sim_run_refuses_an_ir_that_is_not_the_manifests_model(good_build):
    folder = variant(good_build, "sim-other-model", lambda m: m["model"].update(model_id=m["model"]["model_id"] ^ 1))
    check_one_line(run("sim", "run", folder, "--images", 1), 2, "python -m sim run: ", "is not the model of the manifest")


def test_the_bitstream_path_must_stay_in_the_build_for_the_host(good_build):
    folder = variant(good_build, "host-bitstream", lambda m: m["files"].update(bitstream="../../../etc/x.bit"))
    check_one_line(run("host", "infer", folder, "--images", 1), 2, "python -m host infer: ",
                   "files.bitstream must stay inside the build folder")


@pytest.mark.parametrize("report, fragment", [("no/such/folder/report.json", "--report must be in an existing folder"),
                                              (".", "--report must be a file name, not the folder")])
def test_sim_run_checks_the_report_path_before_simulating(good_build, report, fragment):
    folder = good_build / "good"
    before = snapshot(REPO / folder)
    began = time.monotonic()
    out = run("sim", "run", folder, "--images", 1, "--report", report)
    check_one_line(out, 2, "python -m sim run: ", fragment)
    assert time.monotonic() - began < 60                   # refused at once, not after a simulation
    assert snapshot(REPO / folder) == before               # no sim/ folder, no report


@pytest.mark.parametrize("args, fragment", [
    (("--images", "0"), "images must be a positive integer, not 0"),
    (("--images", "abc"), "argument --images: invalid int value: 'abc'"),
    (("--start", "-1"), "start must be a non-negative integer, not -1"),
    (("--images", "2001"), "start + images must be at most 2000"),
])
def test_sim_run_refuses_bad_options_in_one_line(good_build, args, fragment):
    check_one_line(run("sim", "run", good_build / "good", *args), 2, "python -m sim run: ", fragment)


@pytest.mark.parametrize("args, fragment", [
    (("--images", "0"), "--images must be an integer >= 1, not 0"),
    (("--start", "-3"), "--start must be an integer >= 0, not -3"),
    (("--batch", "x"), "argument --batch: invalid int value: 'x'"),
])
def test_host_infer_refuses_bad_options_in_one_line(good_build, args, fragment):
    check_one_line(run("sim", "infer", good_build / "good", *args), 2, "python -m sim infer: ", fragment)
    check_one_line(run("host", "infer", good_build / "good", *args), 2, "python -m host infer: ", fragment)


def test_host_infer_sim_names_the_simulators_command_in_one_line(good_build):
    """The simulated board is sim's (host imports nothing of sim): the old flag says where it went."""
    check_one_line(run("host", "infer", good_build / "good", "--images", 1, "--sim"), 2, "python -m host infer: ",
                   "--sim moved", "python -m sim infer BUILD_DIR")


def test_missing_folders_are_refused_in_one_line():
    check_one_line(run("sim", "run", "build/no-such-build", "--images", 1), 2, "python -m sim run: ",
                   "build folder not found")
    check_one_line(run("host", "infer", "build/no-such-build", "--images", 1), 2, "python -m host infer: ",
                   "build_dir must be a Tern build folder with manifest.json")


def test_host_refuses_garbage_held_out_images_without_a_pickle_hint(good_build):
    folder = variant(good_build, "host-garbage-npy", lambda m: None)
    (REPO / folder / "data").mkdir()
    (REPO / folder / "data" / "heldout_images.npy").write_bytes(b"\x00garbage" * 100)
    np.save(REPO / folder / "data" / "heldout_labels.npy", np.zeros(3, np.int64))
    out = run("sim", "infer", folder, "--images", 1)
    check_one_line(out, 2, "python -m sim infer: ", "heldout_images.npy must be a numpy .npy file")
    assert "pickle" not in out.stderr


def test_ctrl_c_during_sim_run_prints_one_line_and_exits_130(good_build):
    folder = variant(good_build, "sim-interrupted", lambda m: None)
    code, err = interrupt_when(["sim", "run", folder, "--images", 1, "--cocotb"],   # native: tests/test_sim_native.py
                               lambda: (REPO / folder / "sim" / "verilator").is_dir())
    assert (code, err) == (130, "python -m sim run: interrupted\n")
    assert not (REPO / folder / "sim_report.json").exists()


def test_ctrl_c_during_sim_infer_prints_one_line_and_exits_130(good_build, tmp_path):
    log = tmp_path / "stderr"
    folder = good_build / "good"
    # The CLI says it is starting the board (on stderr) before it waits for the server.
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "sim", "infer", str(folder), "--images", "1"],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while "starting the simulated board" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.1)
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = log.read_text().splitlines()
    assert code == 130 and lines[-1] == "python -m sim infer: interrupted", lines
    assert "Traceback" not in log.read_text()
