"""host/ runs on the PYNQ image's Python 3.10 and an old numpy, not only on the main 3.11.

The cheap checks read the source of the packages `gen deploy` ships to the board (host/ and
the formats/ it reads with): every file parses as Python 3.10, imports only what
3.10's standard library has (or numpy), and names no 3.11-only function or numpy-2-only
function. The `slow` test runs the host package for real (import, manifest reading, packing,
unpacking, the driver's slot and DMA-status logic) under a Python 3.10 interpreter with
numpy 1.21.6, the oldest numpy with wheels for 3.10, in a throwaway virtual environment
(it downloads numpy: about a minute).
"""
import ast
import glob
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gen.flow.deploy import BOARD_PACKAGES

REPO = Path(__file__).resolve().parents[1]
HOST_FILES = sorted(path for package in BOARD_PACKAGES for path in (REPO / package).glob("*.py"))
OLDEST_NUMPY = "1.21.6"

# Standard-library modules and names added in 3.11 (What's New in Python 3.11).
NEW_IN_311_MODULES = {"tomllib", "wsgiref.types"}
NEW_IN_311_NAMES = {
    "ExceptionGroup", "BaseExceptionGroup", "add_note", "StrEnum", "ReprEnum", "EnumCheck",
    "global_enum", "Self", "LiteralString", "Never", "assert_never", "assert_type", "reveal_type",
    "Required", "NotRequired", "TypeVarTuple", "Unpack", "dataclass_transform", "get_overloads",
    "clear_overloads", "TaskGroup", "timeout_at", "chdir", "file_digest", "UTC",
}
# numpy functions that exist only from numpy 2.0 (the board's numpy is older).
NUMPY_2_ONLY = {
    "concat", "permute_dims", "unstack", "isdtype", "astype", "matrix_transpose", "vecdot",
    "cumulative_sum", "cumulative_prod", "bitwise_count", "pow", "acos", "asin", "atan", "atan2",
    "acosh", "asinh", "atanh", "bitwise_left_shift", "bitwise_right_shift", "bitwise_invert", "trapezoid",
    "long", "ulong", "vecmat", "matvec", "unique_values", "unique_counts", "unique_inverse", "unique_all",
}


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def attribute_names(tree: ast.AST, of: str | None = None) -> set[str]:
    """Names used as attributes (of `of` only, if given), and names imported from modules."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (of is None or isinstance(node.value, ast.Name) and node.value.id == of):
            names.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and of is None:
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.Name) and of is None:
            names.add(node.id)
    return names


def test_the_host_files_are_found():
    assert {f.relative_to(REPO).as_posix() for f in HOST_FILES} >= {
        "host/__init__.py", "host/cli.py", "host/driver.py", "host/manifest.py", "host/packing.py",
        "formats/manifest.py", "formats/regmap.py", "formats/mnist.py", "formats/heldout.py"}


def board_id(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.mark.parametrize("path", HOST_FILES, ids=board_id)
def test_host_parses_as_python_3_10(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


def test_the_3_10_check_would_catch_3_11_syntax():
    with pytest.raises(SyntaxError):
        ast.parse("try:\n    pass\nexcept* ValueError:\n    pass\n", feature_version=(3, 10))


@pytest.mark.parametrize("path", HOST_FILES, ids=board_id)
def test_host_imports_only_the_3_10_standard_library_and_numpy(path):
    tree = ast.parse(path.read_text())
    allowed_third_party = {"numpy", "pynq", "tqdm"}    # pynq on the board; tqdm lazily and optional
    allowed_first_party = set(BOARD_PACKAGES)          # shipped together by gen deploy
    for module in imported_modules(tree):
        top = module.split(".")[0]
        assert module not in NEW_IN_311_MODULES, f"{path.name} imports {module}, new in Python 3.11"
        assert top in sys.stdlib_module_names or top in allowed_third_party | allowed_first_party, \
            f"{path.name} imports {module}"
    used = attribute_names(tree) & NEW_IN_311_NAMES
    assert not used, f"{path.name} uses {sorted(used)}, new in Python 3.11"
    numpy_used = attribute_names(tree, "np") & NUMPY_2_ONLY
    assert not numpy_used, f"{path.name} uses numpy {sorted(numpy_used)}, new in numpy 2"


def test_pyproject_admits_the_board_python_and_pins_no_newer_numpy_floor():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    numpy = next(d for d in project["dependencies"] if d.startswith("numpy"))
    assert not numpy.startswith("numpy>=2"), numpy
    assert "python3.11" in (REPO / "setup.sh").read_text()     # the main environment stays on 3.11


def python_3_10() -> str | None:
    found = shutil.which("python3.10")
    candidates = ([found] if found else []) + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")))
    for exe in candidates:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.startswith("Python 3.10"):
            return exe
    return None


# Run by the 3.10 interpreter with only numpy installed: the host package from the repository.
BOARD_SCRIPT = r"""
import json, sys, numpy as np
sys.path.insert(0, sys.argv[1])
import host
from host.driver import buffer_slot, dma_error
from host.manifest import load_manifest
from host.packing import check_images, pack_images, unpack_results
assert sys.version_info[:2] == (3, 10) and np.__version__ == sys.argv[3], (sys.version, np.__version__)
assert not {"torch", "gen", "sim", "snn", "amaranth", "cocotb"} & set(sys.modules)
info = load_manifest(sys.argv[2])
images = np.arange(2 * 784, dtype=np.int64).reshape(2, 1, 28, 28).astype(np.uint8)
packed = pack_images(info, check_images(info, images))
words = np.arange(2 * info.output_bytes // 4, dtype="<i4").reshape(2, -1)
logits, classes = unpack_results(info, words.view(np.uint8))
print(json.dumps({"packed": packed[:, :10].tolist(), "bytes": list(packed.shape), "logits": logits.tolist(),
                  "classes": classes.tolist(), "slots": [buffer_slot(i, 2) for i in range(5)],
                  "dma": dma_error(0x4041)}))
"""


@pytest.mark.slow
def test_host_runs_under_python_3_10_with_the_oldest_numpy(tmp_path):
    exe = python_3_10()
    if exe is None:
        pytest.skip("no Python 3.10 interpreter on this machine (pyenv install 3.10 to run this check)")
    venv = tmp_path / "venv"
    subprocess.run([exe, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"numpy=={OLDEST_NUMPY}"],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    sys.path.insert(0, str(Path(__file__).parent))
    from test_host_driver import manifest_dict
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "manifest.json").write_text(json.dumps(manifest_dict()))
    script = tmp_path / "board.py"
    script.write_text(BOARD_SCRIPT)
    out = subprocess.run([str(venv / "bin" / "python"), str(script), str(REPO), str(tmp_path / "build"),
                          OLDEST_NUMPY], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["bytes"] == [2, 784] and result["packed"][0] == list(range(10))
    assert result["logits"][1][:2] == [12, 13] and result["classes"] == [10, 22]
    assert result["slots"] == [[0, 0], [0, 1], [1, 0], [1, 1], [0, 0]]
    assert result["dma"] == "channel halted, decode error (no memory at the address)"
