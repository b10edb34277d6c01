"""The host driver, CLI, notebook and deployment against the simulated board of a real build.

One module-scoped build (no synthesis) of a small MNIST-shaped checkpoint feeds every test;
its RTL runs under Verilator behind sim.board.SimulatedBoard, and the driver's own code
(host.Accelerator) talks to it. The scoreboard is the golden model on the build's IR. The
`slow` test does the same with the shipped example on 100 held-out images.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gen.ir.golden import run as golden_run
from gen.ir.irfile import load as load_ir
from host import Accelerator, DmaError, DmaTimeout, ModelMismatch, NotATernBuild
from sim.board import DMASR_DECODE_ERROR, DMASR_SLAVE_ERROR, SimulatedBoard
from snn.data import load_mnist


REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mnist_ternary_t2.pt"
NOTEBOOK = REPO / "host" / "notebooks" / "mnist_inference.ipynb"
IMAGES = 24


def small_mnist_checkpoint(seed=0, timesteps=2):
    """conv(1→4, 3×3) → LIF → conv(4→4, 3×3, stride 2) → LIF → flatten → linear(→10), 28×28 input."""
    rng = np.random.default_rng(seed)
    state = {}

    def tensor(key, shape, scale):
        state[key] = torch.as_tensor(rng.normal(0, scale, shape).astype(np.float32))

    def lif(name):
        return {"name": name, "type": "lif", "neuron": "ternary", "tau_shift": 2, "v_threshold": 1.0,
                "amplitude": False, "mpbn": False}

    tensor("conv1.weight", (4, 1, 3, 3), 0.6)
    tensor("conv1.bias", (4,), 0.2)
    tensor("conv2.weight", (4, 4, 3, 3), 0.5)
    tensor("fc.weight", (10, 4 * 14 * 14), 0.3)
    tensor("fc.bias", (10,), 0.2)
    layers = [
        {"name": "conv1", "type": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 1,
         "padding": 1, "bias": True}, lif("lif1"),
        {"name": "conv2", "type": "conv2d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "stride": 2,
         "padding": 1, "bias": False}, lif("lif2"),
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "in_features": 4 * 14 * 14, "out_features": 10, "bias": True},
    ]
    return {"format": "tern-checkpoint", "version": 1,
            "arch": {"input_shape": [1, 28, 28], "timesteps": timesteps, "input_normalization": None,
                     "layers": layers},
            "state_dict": state, "meta": {"neuron": "ternary", "timesteps": timesteps}}


def make_build(model: Path, out: Path) -> Path:
    from gen.flow.build import build
    build(model, out=out, images=8, synthesise=False)
    return out


def golden(build_dir: Path, images):
    return golden_run(load_ir(build_dir / "steps" / "03_ir" / "model"), images, record=True)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("host")
    torch.save(small_mnist_checkpoint(), folder / "small_mnist.pt")
    return make_build(folder / "small_mnist.pt", folder / "build")


def files_under(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.is_dir() else {}


@pytest.fixture(scope="module")
def source_tree_sim_build():
    """What the repository's sim_build/board holds before the board starts (it must stay so)."""
    return files_under(REPO / "sim_build" / "board")


@pytest.fixture(scope="module")
def board(build_dir, source_tree_sim_build):
    with SimulatedBoard(build_dir) as board:
        yield board


@pytest.fixture(scope="module")
def heldout():
    return load_mnist(split="heldout", limit=IMAGES)


# --------------------------------------------------------------------------- exactness


def check_exact(acc, build_dir, images, batch_size):
    expected = golden(build_dir, images)
    acc.clear_counters()
    logits = acc.logits(images) if batch_size is None else np.concatenate(
        [l for _, l, _ in acc.stream(images, batch_size=batch_size)])
    assert np.array_equal(logits, expected.logits)
    counters = acc.counters()
    assert counters["images_in"] == counters["images_out"] == len(images) and counters["errors"] == []
    for layer, count in counters["events"].items():
        if layer in expected.events:
            assert count == int(expected.events[layer].sum()) & 0xFFFFFFFF, layer
    return expected


def test_driver_gives_the_golden_logits_and_classes_on_heldout_images(board, build_dir, heldout):
    images, _ = heldout
    acc = Accelerator(build_dir, overlay=board, batch_size=10)     # 10 + 10 + a partial 4
    expected = check_exact(acc, build_dir, images, None)
    assert np.array_equal(acc.predict(images[:IMAGES // 2]), expected.classes[:IMAGES // 2])
    run = acc.last_run
    assert run.images == IMAGES // 2 and run.busy_cycles > 0
    assert run.hw_images_per_second == pytest.approx(acc.info.clock_mhz * 1e6 / run.cycles_per_image)
    print(f"simulated board: {run.cycles_per_image:,.0f} busy cycles/image, "
          f"{run.images_per_second:.1f} images/s through the simulation")


def test_stream_yields_batches_in_order_with_a_partial_last_one(board, build_dir, heldout):
    images, _ = heldout
    acc = Accelerator(build_dir, overlay=board, batch_size=4)
    expected = golden(build_dir, images[:7]).classes
    firsts, classes = [], []
    for first, _, batch_classes in acc.stream(images[:7], batch_size=3):
        firsts.append(first)
        classes.extend(batch_classes.tolist())
    assert firsts == [0, 3, 6] and classes == expected.tolist()
    # Stopping early collects the images already sent: the next call gets its own results.
    batches = acc.stream(images[:7], batch_size=3)
    next(batches)
    batches.close()
    assert acc.predict(images[3:5]).tolist() == expected[3:5].tolist()
    assert acc.predict(images[0]).tolist() == expected[:1].tolist()       # one [C, H, W] image


# --------------------------------------------------------------------------- refusals


def test_a_manifest_of_another_model_is_refused(board, build_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((build_dir / "manifest.json").read_text())
    manifest["model"]["model_id"] ^= 0x1
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelMismatch) as exc:
        Accelerator(other, overlay=board)
    assert (f"the loaded hardware has model ID {manifest['model']['model_id'] ^ 1:#010x}, but "
            f"{other / 'manifest.json'} is model") in str(exc.value)
    assert "load the bitstream of this build folder" in str(exc.value)
    # A manifest whose MAGIC register is elsewhere finds no Tern IP on this overlay.
    magic = next(r for r in manifest["registers"]["registers"] if r["name"] == "MAGIC")
    magic["offset"] = 0x1C                               # SCRATCH reads 0 after reset
    manifest["model"]["model_id"] ^= 0x1
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NotATernBuild, match=r"no IP of the overlay answers with the Tern MAGIC 0x5445524e "
                                            r"\(tern_0 reads 0x00000000\): not a Tern build"):
        Accelerator(other, overlay=board)


def test_wrong_images_are_refused_before_any_transfer(board, build_dir, heldout):
    images, _ = heldout
    acc = Accelerator(build_dir, overlay=board)
    before = acc.counters()["images_in"]
    with pytest.raises(TypeError, match=r"images must have dtype uint8 \(raw 0..255 pixels\), not float32"):
        acc.predict(images.astype(np.float32))
    with pytest.raises(ValueError, match=r"images must have shape \[N, 1, 28, 28\], not \[24, 28, 28\]"):
        acc.predict(images[:, 0])
    with pytest.raises(ValueError, match=r"images must have shape \[N, 1, 28, 28\], not \[24, 1, 27, 28\]"):
        acc.predict(images[:, :, 1:])
    assert acc.counters()["images_in"] == before


def test_the_driver_keeps_more_than_two_images_in_flight_and_flushes_one_row_each(board, build_dir, heldout):
    images, _ = heldout
    acc = Accelerator(build_dir, overlay=board, batch_size=8)     # 8 + 4: both buffer pairs
    board.cache_log.clear()
    board.max_in_flight = 0
    check_exact(acc, build_dir, images[:12], batch_size=None)
    # The send channel ran ahead of the results: images were queued inside the IP's layers.
    assert board.max_in_flight > 2
    # One flush per image sent, one invalidate per result received, each exactly one row.
    flushes = [size for op, size in board.cache_log if op == "flush"]
    invalidates = [size for op, size in board.cache_log if op == "invalidate"]
    assert flushes == [acc.info.input_bytes] * 12
    assert invalidates == [acc.info.output_bytes] * 12


def test_the_board_cache_is_not_in_the_source_tree(board, build_dir, source_tree_sim_build):
    from sim.board_server import cache_dir, cache_root, rtl_sources

    files, top = rtl_sources(build_dir)
    assert cache_dir(files, top, "verilator-lean", cache_root(build_dir)).is_dir()
    assert not cache_root(build_dir).is_relative_to(REPO)
    assert files_under(REPO / "sim_build" / "board") == source_tree_sim_build


@pytest.mark.parametrize("channel, bits, message", [
    ("recv", DMASR_DECODE_ERROR, "the DMA receive of image 0 failed: channel halted, decode error "
                                 "(no memory at the address) (DMASR 0x00000041); reload the overlay"),
    ("send", DMASR_SLAVE_ERROR, "the DMA send of image 0 failed: channel halted, slave error "
                                "(the memory refused the access) (DMASR 0x00000021); reload the overlay"),
])
def test_a_dma_error_state_is_reported_as_such_not_as_a_timeout(build_dir, heldout, channel, bits, message):
    images, _ = heldout
    with SimulatedBoard(build_dir) as board:
        acc = Accelerator(build_dir, overlay=board, timeout=300)
        board.fail_dma(channel, bits)
        began = time.monotonic()
        with pytest.raises(DmaError) as exc:
            acc.predict(images[:3])
        assert time.monotonic() - began < 60          # at once, not after the 300 s timeout
    assert str(exc.value) == message


def test_a_stalled_dma_times_out_with_the_counters(build_dir, heldout):
    images, _ = heldout
    with SimulatedBoard(build_dir) as board:
        acc = Accelerator(build_dir, overlay=board, timeout=2)
        board.stall_results()                    # m_axis TREADY held low
        with pytest.raises(DmaTimeout) as exc:
            acc.predict(images[:3])
    message = str(exc.value)
    assert message.startswith("the DMA receive of image 0 did not finish within 2 s (IP counters: ")
    assert "0 out" in message and "reload the overlay" in message


# --------------------------------------------------------------------------- CLI and notebook


def host_cli(*args, cwd=REPO, package="host"):
    return subprocess.run([sys.executable, "-m", package, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=900)


def test_sim_infer_runs_the_host_cli_on_the_simulated_board_and_prints_json(build_dir, heldout, tmp_path):
    from gen.flow.deploy import deploy

    # A build folder with a deployment's data/ beside it: the CLI checks the golden classes too.
    folder = tmp_path / "build"
    shutil.copytree(build_dir, folder, ignore=shutil.ignore_patterns("steps", "deploy"))
    deploy(build_dir, out=tmp_path / "deploy", images=10)
    shutil.copytree(tmp_path / "deploy" / "data", folder / "data")
    out = host_cli("infer", folder, "--images", 3, "--start", 5, "--json", package="sim")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    images, labels = heldout
    assert result["classes"] == golden(build_dir, images[5:8]).classes.tolist()
    assert result["images"] == 3 and result["simulated"] is True and result["golden_matches"] == 3
    assert result["correct"] == int((np.array(result["classes"]) == labels[5:8]).sum())
    assert result["counters"]["images_out"] == 3 and result["run"]["cycles_per_image"] > 0


def test_cli_refuses_bad_input_in_one_line(build_dir, tmp_path):
    out = host_cli("infer", tmp_path, "--images", 3)
    assert out.returncode == 2
    assert out.stderr == (f"python -m host infer: build_dir must be a Tern build folder with manifest.json, "
                          f"not {str(tmp_path)!r}\n")
    out = host_cli("infer", build_dir, "--images", 0, package="sim")
    assert out.returncode == 2 and out.stderr.strip() == "python -m sim infer: --images must be an integer >= 1, not 0"


def test_notebook_runs_headless_on_the_simulated_board(build_dir, tmp_path):
    import nbclient   # dev dependencies (pyproject): a broken install fails, never skips
    import nbformat
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {"TERN_SIMULATE": "1", "TERN_BUILD_DIR": str(build_dir), "TERN_IMAGES": "4"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)       # the kernel inherits them
    try:
        nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "simulate: True, images: 4" in text and "accuracy: " in text and "/4 = " in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2      # confusion matrix, grid
    assert not [o for o in outputs if o["output_type"] == "error"]


# --------------------------------------------------------------------------- deployment


def test_deployment_holds_what_the_board_needs(build_dir, tmp_path):
    from gen.flow.deploy import deploy

    record = deploy(build_dir, out=tmp_path / "deploy", images=50)
    folder = tmp_path / "deploy"
    manifest = json.loads((build_dir / "manifest.json").read_text())
    stem = manifest["files"]["bitstream"]
    assert record["ready"] is False and record["missing"] == [stem, manifest["files"]["hwh"]]
    assert "Not ready for the board yet" in (folder / "README.md").read_text()
    for name in ("manifest.json", "mnist_inference.ipynb", "host/driver.py", "host/__main__.py",
                 "formats/manifest.py", "formats/regmap.py", "formats/heldout.py", "data/heldout_images.npy", "data/heldout_labels.npy", "data/golden_classes.npy", "deploy.json"):
        assert (folder / name).is_file(), name
    images, labels = load_mnist(split="heldout", limit=50)
    assert np.array_equal(np.load(folder / "data" / "heldout_images.npy"), images)
    assert np.array_equal(np.load(folder / "data" / "heldout_labels.npy"), labels)
    assert np.array_equal(np.load(folder / "data" / "golden_classes.npy"), golden(build_dir, images).classes)

    # With the bitstream made, the deployment is ready; its driver runs from the folder alone.
    for key in ("bitstream", "hwh"):
        (build_dir / manifest["files"][key]).write_bytes(b"placeholder")
    try:
        record = deploy(build_dir, out=folder, images=30)
    finally:
        for key in ("bitstream", "hwh"):
            (build_dir / manifest["files"][key]).unlink()
    assert record["ready"] is True and (folder / stem).is_file() and record["heldout_images"] == 30
    assert len(np.load(folder / "data" / "golden_classes.npy")) == 30
    code = ("import sys, host, host.cli, formats; print(host.__file__); print(formats.__file__); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'amaranth', 'cocotb', 'gen', 'snn', 'sim'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder, check=True)
    assert out.stdout.splitlines() == [str(folder / "host" / "__init__.py"), str(folder / "formats" / "__init__.py"),
                                       "[]"]
    out = host_cli("infer", ".", "--images", 2, cwd=folder)
    try:
        import pynq  # noqa: F401
    except ImportError:
        assert out.returncode == 1 and "pynq is not installed" in out.stderr


def test_deploy_refuses_a_folder_that_is_not_a_build(tmp_path):
    from gen.flow.deploy import deploy

    with pytest.raises(ValueError, match="build_dir must be a Tern build folder with manifest.json, not "):
        deploy(tmp_path)
    out = subprocess.run([sys.executable, "-m", "gen.flow.deploy", str(tmp_path)], capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 2 and out.stderr.startswith("python -m gen deploy: error: build_dir must be")


# --------------------------------------------------------------------------- the shipped example


@pytest.mark.slow
def test_shipped_example_on_20_heldout_images_is_exact(tmp_path):
    """About 220,000 cycles per image: some 10 s each under Verilator, plus minutes of compiling."""
    if not EXAMPLE.exists():
        pytest.fail(f"{EXAMPLE} is missing: it is committed with the repository")
    build = make_build(EXAMPLE, tmp_path / "mnist")
    images, labels = load_mnist(split="heldout", limit=20)
    with SimulatedBoard(build) as board:
        acc = Accelerator(build, overlay=board, batch_size=8)
        expected = check_exact(acc, build, images, 8)
        print(f"shipped example: {acc.counters()['busy_cycles'] / len(images):,.0f} busy cycles/image; "
              f"{(expected.classes == labels).sum()}/20 correct")
    assert (expected.classes == labels).sum() >= 19
