"""host/: the driver's parts that need no board and no simulation.

Manifest reading and its refusals, the byte packing (against the testbenches' packing and
gen's manifest description), IP discovery, parameter checks, and the import rule: `host`
pulls in numpy only (pynq on the board, lazily), never torch, amaranth, cocotb or gen.
"""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gen.backend.manifest import input_packing, output_packing
from gen.backend.regmap import register_map
from host import Accelerator, NotATernBuild, TernError, load_manifest
from host.driver import buffer_slot, dma_error, find_ips
from host.manifest import parse_manifest
from host.packing import check_images, pack_images, unpack_results
from sim.axis import pack_images as tb_pack_images

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "amaranth", "cocotb", "cocotbext", "gen", "snn", "sim", "pynq")


def manifest_dict(shape=(1, 28, 28), classes=10, model_id=0x1234ABCD):
    return {"format": "tern-build", "version": 1, "model": {"name": "m", "model_id": model_id},
            "board": {"name": "pynq-z2", "clock_mhz": 100.0}, "timesteps": 2, "classes": classes,
            "input": input_packing(shape), "output": output_packing(classes, 20),
            "registers": register_map(["conv1", "fc"]).to_json(),
            "files": {"rtl": ["rtl/tern_top.v"], "ir": ["steps/03_ir/model.json", "steps/03_ir/model.npz"],
                      "bitstream": "tern_m.bit", "hwh": "tern_m.hwh"}}


@pytest.fixture
def build_dir(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(manifest_dict()))
    return tmp_path


# --------------------------------------------------------------------------- imports and packaging


def test_importing_host_pulls_in_no_torch_amaranth_cocotb_or_gen():
    code = ("import sys, host, host.cli, host.images; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(FORBIDDEN)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_pynq_is_in_no_dependency_list():
    # pynq 4 pins numpy < 2; the board brings its own, and gets host/ from `gen deploy`, not pip
    # (installing this package there would pull torch).
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lists = [project["dependencies"], *project["optional-dependencies"].values()]
    assert not any(dep.lower().startswith("pynq") for deps in lists for dep in deps)


# --------------------------------------------------------------------------- manifest


def test_manifest_reads_shapes_packing_and_registers(build_dir):
    info = load_manifest(build_dir)
    assert info.input_shape == (1, 28, 28) and info.pixels_per_image == 784
    assert info.input_bytes == 784 and info.output_bytes == 48 and info.output_words == 11
    assert info.offset("MODEL_ID") == 0x08 and info.model_id == 0x1234ABCD
    assert info.event_counters == (("conv1", "EVENTS_0"), ("fc", "EVENTS_1"))
    assert info.bitstream_path == build_dir / "tern_m.bit"


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format="other"), "format must be 'tern-build', not 'other': not a Tern build"),
    (lambda m: m.update(version=99), "manifest version must be one of (1,), not 99: update the host driver"),
    (lambda m: m["model"].pop("model_id"), "field 'model.model_id' is missing: not a Tern build manifest"),
    (lambda m: m["input"].update(shape=[28, 28]), "input.shape must be [C, H, W] of positive integers, not [28, 28]"),
    (lambda m: m["input"].update(pixels_per_image=100), "input.pixels_per_image must be C*H*W = 784, not 100"),
    (lambda m: m["registers"].update(version=7), "register map version must be one of (1,), not 7"),
    (lambda m: m.update(version=True), "manifest version must be one of (1,), not True"),
    (lambda m: m["files"].update(rtl=[]), "files.rtl must be a non-empty list of file names, not []"),
    (lambda m: m["files"].update(ir="model.json"), "files.ir must be a non-empty list of file names"),
    (lambda m: m["files"].update(rtl=["/etc/passwd"]), "files.rtl[0] must stay inside the build folder "
                                                       "(relative, no '..'), not '/etc/passwd'"),
    (lambda m: m["files"].update(bitstream="../../x.bit"), "files.bitstream must stay inside the build folder"),
    (lambda m: m["registers"].update(registers="MAGIC"), "field 'registers.registers' must be a list, not 'MAGIC'"),
    (lambda m: m["registers"]["registers"][0].update(offset="0x0"), "registers.registers[0] must be "
                                                                     "{\"name\": string, \"offset\": word-aligned"),
    (lambda m: m["model"].update(model_id=1 << 40), "model.model_id must be a 32-bit unsigned integer"),
])
def test_bad_manifests_are_refused_with_the_reason(change, message):
    data = manifest_dict()
    change(data)
    with pytest.raises(NotATernBuild) as exc:
        parse_manifest(data, "b/manifest.json")
    assert message in str(exc.value)


def test_a_folder_without_manifest_is_not_a_build(tmp_path):
    with pytest.raises(NotATernBuild, match="build_dir must be a Tern build folder with manifest.json, not "):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(NotATernBuild, match="not readable JSON"):
        load_manifest(tmp_path)


# --------------------------------------------------------------------------- packing


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 5, 5), (2, 4, 4)])
def test_packing_matches_the_testbench_packing(shape):
    info = parse_manifest(manifest_dict(shape), "m.json")
    images = np.random.default_rng(1).integers(0, 256, (5,) + shape, dtype=np.uint8)
    ours = pack_images(info, images)
    theirs = tb_pack_images(images, info.raw["input"]).view(np.uint8).reshape(5, -1)
    assert ours.shape == (5, info.input_bytes)
    assert np.array_equal(ours, theirs)


def test_results_unpack_to_signed_logits_and_class():
    info = parse_manifest(manifest_dict(classes=3), "m.json")
    words = np.array([[-5, 7, -2147483648, 1], [3, 3, 0, 0]], dtype="<i4")   # K=3 logits, class, (no pad)
    logits, classes = unpack_results(info, words.view(np.uint8))
    assert logits.tolist() == [[-5, 7, -2147483648], [3, 3, 0]] and classes.tolist() == [1, 0]
    assert logits.dtype == np.int64


def test_image_checks_name_the_expected_shape_and_dtype(build_dir):
    info = load_manifest(build_dir)
    assert check_images(info, np.zeros((1, 28, 28), np.uint8)).shape == (1, 1, 28, 28)
    with pytest.raises(TypeError, match=r"images must have dtype uint8 \(raw 0..255 pixels\), not float32"):
        check_images(info, np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"images must have shape \[N, 1, 28, 28\], not \[2, 28, 28\]"):
        check_images(info, np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(TypeError, match=r"images must be a numpy array of uint8 \[1, 28, 28\], not list"):
        check_images(info, [[0]])


# --------------------------------------------------------------------------- overlay discovery


def test_overlays_without_a_dma_or_a_tern_ip_are_not_tern_builds():
    with pytest.raises(NotATernBuild, match="overlay must be a pynq.Overlay .* with an ip_dict, not object"):
        find_ips(object())

    class Overlay:
        ip_dict = {"axi_gpio_0": {"type": "xilinx.com:ip:axi_gpio:2.0"}}

    with pytest.raises(NotATernBuild, match=r"must have exactly one AXI DMA, not 0 \(its IPs: axi_gpio_0\)"):
        find_ips(Overlay())
    Overlay.ip_dict["axi_dma"] = {"type": "xilinx.com:ip:axi_dma:7.1"}
    with pytest.raises(NotATernBuild, match="the overlay has no Tern IP"):
        find_ips(Overlay())
    Overlay.ip_dict["tern_0"] = {"type": "xilinx.com:module_ref:tern_top:1.0"}
    assert find_ips(Overlay()) == ("axi_dma", ["tern_0"])


def test_batches_alternate_between_the_two_buffer_pairs():
    # 5 images in batches of 2: pair 0 holds images 0-1 and 4, pair 1 images 2-3.
    assert [buffer_slot(i, 2) for i in range(5)] == [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0)]


@pytest.mark.parametrize("status, problem", [
    (0x0000_0002, None),                         # idle
    (0x0000_0000, None),                         # busy, running
    (0x0000_0001, "channel halted"),
    (0x0000_4021, "channel halted, slave error (the memory refused the access)"),
    (0x0000_4041, "channel halted, decode error (no memory at the address)"),
    (0x0000_0010, "internal error"),
])
def test_dma_status_bits_are_decoded(status, problem):
    assert dma_error(status) == problem


def test_accelerator_parameters_are_checked_before_any_hardware(build_dir):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, not 0"):
        Accelerator(build_dir, batch_size=0)
    with pytest.raises(ValueError, match="timeout must be a number > 0, not -1"):
        Accelerator(build_dir, timeout=-1)
    with pytest.raises(NotATernBuild, match="bitstream must be a file in the build folder"):
        Accelerator(build_dir)
    (build_dir / "tern_m.bit").write_bytes(b"\0")
    try:
        import pynq  # noqa: F401
    except ImportError:
        with pytest.raises(TernError, match="pynq is not installed"):
            Accelerator(build_dir)
