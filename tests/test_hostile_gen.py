"""Hostile input to `python -m gen`, through the real command line (issue 12).

Every case runs `.venv/bin/python -m gen ...` from the repository root (relative paths where
the path is the point) and checks what the user sees: exactly one line on stderr besides
the build's `[i/9] step` progress lines, no traceback, the documented exit code
(docs/errors.md: 2 bad input, 1 tool failure or full disk, 130 Ctrl-C), and nothing lost or
half-written. Every case fails before synthesis, so the file stays fast.
"""
import errno
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gen.flow.build import build_name, is_tern_build
from gen.ir.irfile import save
from gen.ir.random_net import random_checkpoint, random_network
from test_build_flow import small_checkpoint

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
PROGRESS = re.compile(r"^\[\d+/\d+\] ")


def gen(*args, cwd=ROOT, timeout=300):
    return subprocess.run([PYTHON, "-m", "gen", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def rel(path) -> str:
    """`path` as the user would type it from the repository root."""
    return os.path.relpath(path, ROOT)


def one_error_line(out, code: int, *fragments: str) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    # What a terminal shows: a progress bar redrawn with \r counts only by its last state.
    shown = [l.split("\r")[-1] for l in out.stderr.split("\n")]
    lines = [l for l in shown if l.strip() and not PROGRESS.match(l)]
    assert len(lines) == 1, out.stderr
    assert out.returncode == code, out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict:
    """Every file under `folder` (hidden ones too) with its bytes: equal snapshots = nothing touched."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    torch.save(small_checkpoint(), path)
    return path


@pytest.fixture(scope="module")
def ir_pair(tmp_path_factory):
    """A valid IR pair; cases copy and corrupt it."""
    json_path, _ = save(random_network(3), tmp_path_factory.mktemp("ir") / "net")
    return json_path


def write_ir(folder: Path, source_json: Path, document=None, arrays=None, npz_bytes=None) -> Path:
    """A copy of the IR pair at folder/net.json, with the json and/or the npz changed; the
    npz hash is kept consistent, so the case tests what it means to test."""
    doc = json.loads(source_json.read_text())
    src_npz = source_json.with_name(doc["npz"])
    if arrays is not None:
        with np.load(src_npz) as data:
            content = {k: data[k] for k in data.files}
        content.update(arrays)
        buffer = io.BytesIO()
        np.savez(buffer, **content)
        npz_bytes = buffer.getvalue()
    if npz_bytes is None:
        npz_bytes = src_npz.read_bytes()
    (folder / "net.npz").write_bytes(npz_bytes)
    doc.update(npz="net.npz", npz_sha256=hashlib.sha256(npz_bytes).hexdigest())
    doc = document(doc) if document is not None else doc
    (folder / "net.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return folder / "net.json"


def without(key):
    return lambda doc: {k: v for k, v in doc.items() if k != key}


def with_fields(**fields):
    return lambda doc: {**doc, **fields}


def garbage_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("a.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (99999,), }"
                   + b" " * 50 + b"\n" + b"\x00" * 16)
    return buffer.getvalue()


def first_layer_strings(doc):
    return {**doc, "layers": ["conv1"] + doc["layers"][1:]}


IR_CASES = {
    # case: (how the pair is corrupted, what the one line must say)
    "null layers": (dict(document=with_fields(layers=None)), "layers must be a list"),
    "layers as strings": (dict(document=first_layer_strings), "every layer must be an object"),
    "string for an int": (dict(document=with_fields(timesteps="2")), "timesteps must be an int"),
    "float shape": (dict(document=with_fields(input_shape=[1.0, 6.5, 6.0])), "net.json is not a valid IR"),
    "float array": (dict(arrays=None), "is float64"),   # filled in below
    "npz key with ..": (dict(document=with_fields(npz="../net.npz")), "no folders, no '..'"),
    "npz path elsewhere": (dict(document=with_fields(npz="/etc/passwd")), "no folders, no '..'"),
    "no npz_sha256": (dict(document=without("npz_sha256")), "npz_sha256 must be the SHA-256"),
    "no model_id": (dict(document=without("model_id")), "model_id must be the model's 32-bit ID"),
    "wrong model_id": (dict(document=with_fields(model_id=1)), "model_id 1 does not match its contents"),
    "not json": (dict(document=lambda doc: "{not json"), "it is not JSON"),
    "not a zip": (dict(npz_bytes=b"\x80\x04garbage that numpy would call pickled data"), "it is not a zip archive"),
    "truncated npy": (dict(npz_bytes=garbage_zip()), "an array in it cannot be read"),
}


@pytest.mark.parametrize("case", sorted(IR_CASES))
def test_malformed_ir_is_one_line_naming_the_file(case, ir_pair, tmp_path):
    how, expected = IR_CASES[case]
    if case == "float array":
        with np.load(ir_pair.with_suffix(".npz")) as data:
            key = data.files[0]
            how = dict(arrays={key: data[key].astype(np.float64)})
    path = write_ir(tmp_path, ir_pair, **how)
    before = snapshot(tmp_path)
    line = one_error_line(gen("inspect", rel(path), "--images", "0"), 2, expected)
    assert "net.json" in line or "net.npz" in line
    for misleading in ("pickle", "Errno", "invalid literal", "string indices", "mmap length"):
        assert misleading not in line
    assert snapshot(tmp_path) == before


def test_garbage_npz_given_alone_is_not_called_pickled_data(tmp_path):
    (tmp_path / "g.npz").write_bytes(bytes(range(256)) * 3)
    line = one_error_line(gen("inspect", rel(tmp_path / "g.npz"), "--images", "0"), 2, "IR file not found", "g.json")
    assert "pickle" not in line


@pytest.mark.parametrize("args", [["build"], ["inspect", "x.json", "--images", "many"], ["frobnicate"],
                                  ["build", "m.pt", "--lanes", "a=1", "--config", "c.toml"]])
def test_bad_options_are_one_line(args):
    one_error_line(gen(*args), 2, "python -m gen", "error:", "--help")


def test_inspect_of_an_ir_file_refuses_wbits(ir_pair):
    """--wbits re-quantises a checkpoint; an IR file is already quantised: say so, do not ignore it."""
    one_error_line(gen("inspect", rel(ir_pair), "--images", "0", "--wbits", "4"), 2,
                   "--wbits applies to a checkpoint", "wbits=8")
    assert gen("inspect", rel(ir_pair), "--images", "0").returncode == 0


def test_inspect_plots_onto_a_file_is_refused_before_the_run(ir_pair, tmp_path):
    target = tmp_path / "plots.png"
    target.write_bytes(b"precious")
    one_error_line(gen("inspect", rel(ir_pair), "--images", "0", "--plots", rel(target)), 2,
                   "--plots must be a folder", "plots.png")
    assert target.read_bytes() == b"precious"


def test_subnormal_weight_is_refused_in_one_line(tmp_path):
    ckpt = small_checkpoint()
    ckpt["state_dict"]["conv1.weight"][0] = 5e-45      # a float32 subnormal: a whole channel of them
    torch.save(ckpt, tmp_path / "tiny.pt")
    line = one_error_line(gen("inspect", rel(tmp_path / "tiny.pt"), "--images", "0"), 2)
    assert "conv1" in line and "OverflowError" not in line


def test_garbage_manifest_for_deploy_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text("{nope")
    one_error_line(gen("deploy", rel(tmp_path)), 2, "manifest.json", "not JSON")
    (tmp_path / "manifest.json").write_text("[1, 2]")
    one_error_line(gen("deploy", rel(tmp_path)), 2, "format 'tern-build'")


# --------------------------------------------------------------------------- gen build --out


def web_extension(folder: Path) -> Path:
    """A folder that merely holds a file named manifest.json (issue 12: it was wiped)."""
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"manifest_version": 3, "name": "my extension"}))
    (folder / "background.js").write_text("chrome.runtime.onInstalled.addListener(() => {});\n")
    (folder / "icons").mkdir()
    (folder / "icons" / "icon.png").write_bytes(b"\x89PNG fake")
    return folder


@pytest.mark.parametrize("manifest", [
    None,                                               # no manifest at all
    json.dumps({"manifest_version": 3}),               # a web extension's
    json.dumps({"format": "tern-build"}),              # the format but no version
    json.dumps({"format": "tern-build", "version": "1"}),
    json.dumps(["format", "tern-build"]),
    "{not json",
])
def test_build_never_replaces_a_folder_that_is_not_a_tern_build(manifest, checkpoint, tmp_path):
    out = web_extension(tmp_path / "ext")
    if manifest is None:
        (out / "manifest.json").unlink()
    else:
        (out / "manifest.json").write_text(manifest)
    before = snapshot(tmp_path)
    one_error_line(gen("build", rel(checkpoint), "--out", rel(out), "--no-synth"), 2,
                   "not a Tern build", "nothing was changed")
    assert snapshot(tmp_path) == before                 # no hidden work folder either


def test_is_tern_build_reads_the_manifests_identifying_fields(tmp_path):
    assert not is_tern_build(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "tern-build", "version": 1}))
    assert is_tern_build(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "tern-build", "version": True}))
    assert not is_tern_build(tmp_path)


def test_build_refuses_an_out_that_is_a_file(checkpoint, tmp_path):
    target = tmp_path / "out"
    target.write_text("mine")
    one_error_line(gen("build", rel(checkpoint), "--out", rel(target), "--no-synth"), 2, "is not a folder")
    assert target.read_text() == "mine"


def test_build_into_proc_is_one_line(checkpoint):
    one_error_line(gen("build", rel(checkpoint), "--out", "/proc/tern_build", "--no-synth"), 2,
                   "/proc/tern_build", "--out cannot be written there")


def mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write into: a read-only tmpfs as root (root ignores file modes),
    mode 0555 otherwise."""
    folder = tmp_path / "ro"
    if mount_tmpfs(folder, "size=64k,ro"):
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
    elif os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    else:
        pytest.skip("running as root without the right to mount a read-only tmpfs: no folder is read-only")


def test_build_in_a_read_only_folder_is_one_line(checkpoint, read_only_dir):
    line = one_error_line(gen("build", rel(checkpoint), "--out", rel(read_only_dir / "b"), "--no-synth"), 2,
                          "--out cannot be written there")
    assert rel(read_only_dir / "b") in line or str(read_only_dir / "b") in line
    assert list(read_only_dir.iterdir()) == []


@pytest.fixture
def full_disk(tmp_path):
    """A real file system with 64 KiB of room: a tmpfs, which only root can mount. Elsewhere
    the cases skip, and test_cli_os_errors_name_the_file_and_pick_the_exit_code checks the mapping."""
    folder = tmp_path / "full"
    if not mount_tmpfs(folder, "size=64k"):
        pytest.skip("mounting a tiny tmpfs needs root; the ENOSPC handling is covered by test_cli_os_errors")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_build_onto_a_full_disk_is_one_line_and_frees_its_space(checkpoint, full_disk):
    (full_disk / "keep.txt").write_text("mine")
    line = one_error_line(gen("build", rel(checkpoint), "--out", rel(full_disk / "b"), "--no-synth",
                              "--images", "0"), 1, "No space left on device", "--out cannot be written")
    assert "b" in line
    assert sorted(p.name for p in full_disk.iterdir()) == ["keep.txt"]
    assert (full_disk / "keep.txt").read_text() == "mine"


def test_inspect_plots_onto_a_full_disk_leaves_no_partial_png(full_disk, tmp_path):
    path = tmp_path / "rand28.pt"
    torch.save(random_checkpoint(3, input_shape=(1, 28, 28), timesteps=2), path)
    line = one_error_line(gen("inspect", rel(path), "--images", "4", "--plots", rel(full_disk / "plots")), 1,
                          "No space left on device", ".png")
    assert "plots" in line
    assert not [p for p in full_disk.rglob("*") if p.is_file()]


def test_interrupted_build_prints_one_line_exits_130_and_leaves_nothing(checkpoint, tmp_path):
    out = tmp_path / "b"
    proc = subprocess.Popen([PYTHON, "-m", "gen", "build", rel(checkpoint), "--out", rel(out), "--no-synth",
                             "--images", "0"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:                   # interrupt once the build has started its steps
        lines.append(line)
        if line.startswith("[2/"):
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    out_result = subprocess.CompletedProcess(proc.args, proc.returncode, "", "".join(lines) + rest)
    one_error_line(out_result, 130, "interrupted (Ctrl-C)")
    assert list(tmp_path.iterdir()) == []      # no build, no hidden work folder, no .failed


def test_odd_model_name_builds_and_rebuilding_keeps_the_deployment(tmp_path):
    """`my model (copy).pt` was refused at step 8 after synthesis (issue 12); and a rebuild over
    a build must keep DIR/deploy, gen deploy's default output."""
    model = tmp_path / "my model (copy).pt"
    torch.save(small_checkpoint(), model)
    assert build_name(model) == "my_model__copy_"
    out = tmp_path / "b"
    first = gen("build", rel(model), "--out", rel(out), "--no-synth", "--images", "0")
    assert first.returncode == 0, first.stderr
    assert "set stem tern_my_model__copy_" in (out / "build_bitstream.tcl").read_text()
    (out / "deploy").mkdir()
    (out / "deploy" / "deploy.json").write_text("{}")
    (out / "deploy" / "tern_my_model__copy_.bit").write_bytes(b"bitstream made by hand")
    deploy_before = snapshot(out / "deploy")
    second = gen("build", rel(model), "--out", rel(out), "--no-synth", "--images", "0")
    assert second.returncode == 0, second.stderr
    assert f"kept {rel(out / 'deploy')}" in second.stderr
    assert snapshot(out / "deploy") == deploy_before and is_tern_build(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", model.name]


def test_cli_os_errors_name_the_file_and_pick_the_exit_code():
    """The mapping itself (for machines where no full disk can be mounted)."""
    from gen.cli import describe_os_error, os_error_exit_code
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "build/x")
    assert describe_os_error(full) == "build/x: No space left on device"
    assert os_error_exit_code(full) == 1                      # the machine's state, as for python -m sim
    assert os_error_exit_code(OSError(errno.EIO, os.strerror(errno.EIO))) == 1
    assert os_error_exit_code(OSError(errno.EROFS, os.strerror(errno.EROFS), "ro/b")) == 2
