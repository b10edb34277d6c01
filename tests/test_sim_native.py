"""The native bench (sim/native/: the build's top compiled with a C++ harness, cached per RTL)
against the cocotb bench (sim/tb/network.py) on the same builds and images.

Three small random builds: the default plan, every layer on the dense engines, every layer on
the event engines. Without back-pressure both benches must give the same logits, classes,
registers, event counts and cycle stamps (absolute: the native harness plays the cocotb
bench's reset and AXI4-Lite preamble cycle for cycle); with back-pressure the native run
must still be bit-exact. Then the model cache (one compile for the same RTL in two folders),
`sim run --jobs` and `--cluster` (a Dask LocalCluster) against one run, and the errors.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gen.flow.build import build_from_ir
from gen.ir.random_net import random_network
from sim.native.model import compiled_model, model_key, make_flags
from sim.network import (SimulationError, load_build, load_images, run_simulator, simulate_build)
from sim_cli import interrupt_when

REPO = Path(__file__).resolve().parents[1]
IMAGES = 4


def small_net(name: str):
    """1×8×8 → conv → conv → dense readout, ternary: both engine families take every layer."""
    return random_network(np.random.default_rng(5006), max_layers=4, shortcuts=False, neuron="ternary", name=name)


def build_folder(out: Path, family: str | None) -> Path:
    net = small_net(f"native_{family or 'default'}")
    engines = None if family is None else {layer.name: family for layer in net.layers}
    build_from_ir(net, "pynq-z2", out, images=8, synthesise=False, lint=False, engines=engines)
    return out


@pytest.fixture(scope="module", params=[None, "dense", "event"], ids=["default", "dense", "event"])
def build(request, tmp_path_factory):
    out = build_folder(tmp_path_factory.mktemp("native") / "build", request.param)
    families = {layer["engine_family"] for layer in json.loads((out / "manifest.json").read_text())["layers"]}
    assert request.param is None or families == {request.param}, families
    return out


def test_native_and_cocotb_benches_agree_cycle_for_cycle(build):
    folder = load_build(build)
    images, _, _ = load_images(folder.net, IMAGES)
    native = run_simulator(folder, images, bench="native", seed=1, quiet=True)
    cocotb = run_simulator(folder, images, bench="cocotb", seed=1, quiet=True)
    assert native.error is None and cocotb.error is None, (native.error, cocotb.error)
    assert len(native.classes) == IMAGES
    for name in ("logits", "classes", "in_cycles", "out_cycles"):
        assert np.array_equal(getattr(native, name), getattr(cocotb, name)), name
    assert native.registers == cocotb.registers
    assert native.identity == cocotb.identity and native.identity["MAGIC"] == 0x5445524E
    assert native.event_counts == cocotb.event_counts and sum(native.event_counts.values()) > 0


def test_reports_of_both_benches_agree(build, tmp_path):
    native = simulate_build(build, IMAGES, seed=3, report=tmp_path / "n.json", quiet=True)
    cocotb = simulate_build(build, IMAGES, seed=3, bench="cocotb", report=tmp_path / "c.json", quiet=True)
    assert native.ok and cocotb.ok, (native.mismatches, cocotb.mismatches)
    assert (native.report["bench"], cocotb.report["bench"]) == ("native", "cocotb")
    same = ("latency_cycles", "cycles_per_image", "result_cycles", "registers", "busy_cycles", "layers", "results")
    assert {k: native.report[k] for k in same} == {k: cocotb.report[k] for k in same}
    assert np.array_equal(native.classes, cocotb.classes)


def test_native_bench_with_backpressure_is_bit_exact(build, tmp_path):
    plain = simulate_build(build, IMAGES, seed=5, report=tmp_path / "plain.json", quiet=True)
    pressed = simulate_build(build, IMAGES, seed=5, backpressure=True, report=tmp_path / "bp.json", quiet=True)
    assert pressed.ok, [str(m) for m in pressed.mismatches]
    assert pressed.report["backpressure"] is True and pressed.report["results"] == IMAGES
    assert np.array_equal(pressed.classes, plain.classes)
    # The gaps and stalls happened: some beat was taken at another cycle than back to back.
    folder = load_build(build)
    images, _, _ = load_images(folder.net, IMAGES)
    a = run_simulator(folder, images, bench="native", seed=5)
    b = run_simulator(folder, images, bench="native", seed=5, backpressure=True)
    assert not (np.array_equal(a.in_cycles, b.in_cycles) and np.array_equal(a.out_cycles, b.out_cycles))


def test_same_rtl_in_two_folders_compiles_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TERN_CACHE", str(tmp_path / "cache"))
    first = load_build(build_folder(tmp_path / "a", None))
    second = load_build(build_folder(tmp_path / "b", None))
    assert model_key(first.rtl, first.top, make_flags()) == model_key(second.rtl, second.top, make_flags())
    binary = compiled_model(first.rtl, first.top)
    assert binary.is_relative_to(tmp_path / "cache" / "verilator")
    stamp = binary.stat().st_mtime_ns
    assert compiled_model(second.rtl, second.top) == binary and binary.stat().st_mtime_ns == stamp
    assert len([p for p in (tmp_path / "cache" / "verilator").iterdir() if (p / "tern_sim").is_file()]) == 1


def test_a_failed_compile_is_one_line_naming_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TERN_CACHE", str(tmp_path / "cache"))
    out = build_folder(tmp_path / "b", None)
    top = out / "rtl" / "tern_top.v"
    top.write_text(top.read_text().replace("endmodule", "endmodule garbage", 1))
    with pytest.raises(SimulationError, match=r"Verilator could not compile tern_top .*; see .*compile\.log$") as err:
        simulate_build(out, 1, seed=1, quiet=True)
    log = Path(str(err.value).rsplit("see ", 1)[1])
    assert log.is_file() and "garbage" in log.read_text()


def sim_run(*args):
    return subprocess.run([sys.executable, "-m", "sim", "run", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO)


def test_jobs_split_the_images_and_merge_one_report(build, tmp_path):
    one = simulate_build(build, 7, seed=2, jobs=1, report=tmp_path / "one.json", quiet=True)
    res = sim_run(os.path.relpath(build, REPO), "--images", 7, "--seed", 2, "--jobs", 3,
                  "--report", os.path.relpath(tmp_path / "three.json", REPO))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "7/7 images on verilator: bit-exact" in res.stdout and "3 chunks in parallel processes" in res.stdout
    three = json.loads((tmp_path / "three.json").read_text())
    assert three["chunks"] == 3 and three["bit_exact"] and three["results"] == three["images"] == 7
    assert three["images_source"] == one.report["images_source"] == "random images 0..6 (seed 0)"
    assert three["registers"]["IMAGES_IN"] == three["registers"]["IMAGES_OUT"] == 7
    for counter in load_build(build).manifest["registers"]["event_counters"]:
        # Each chunk counts its own images' events: summed, they are the one run's count.
        assert three["registers"][counter["register"]] == one.report["registers"][counter["register"]], counter
    assert [l["events_per_image"] for l in three["layers"]] == [l["events_per_image"] for l in one.report["layers"]]


def test_a_dask_cluster_gives_the_report_of_jobs(build, tmp_path):
    distributed = pytest.importorskip("distributed")
    jobs = simulate_build(build, 6, seed=4, jobs=2, report=tmp_path / "jobs.json", quiet=True)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c:
        on_cluster = simulate_build(build, 6, seed=4, jobs=2, cluster=c.scheduler_address,
                                    report=tmp_path / "cluster.json", quiet=True)
    assert on_cluster.report["cluster"] == c.scheduler_address and jobs.report["cluster"] is None
    for key in ("results", "mismatches", "first_mismatches", "bit_exact", "chunks", "registers", "layers",
                "cycles_per_image", "latency_cycles", "images_source"):
        assert on_cluster.report[key] == jobs.report[key], key
    assert np.array_equal(on_cluster.classes, jobs.classes) and len(jobs.classes) == 6


def test_cocotb_only_options_and_bad_jobs_are_refused(build):
    with pytest.raises(ValueError, match="cannot be used with the cocotb bench"):
        simulate_build(build, 2, bench="cocotb", jobs=2)
    with pytest.raises(ValueError, match="waveforms needs the cocotb bench"):
        run_simulator(load_build(build), load_images(load_build(build).net, 1)[0], bench="native", waves=True)
    with pytest.raises(ValueError, match="jobs must be a positive integer, not 0"):
        simulate_build(build, 2, jobs=0)
    res = sim_run(build, "--images", 2, "--cocotb", "--jobs", 2)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    res = sim_run(build, "--images", 2, "--cluster", "tcp://127.0.0.1:1", "--jobs", 2)
    assert res.returncode == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in res.stderr


def test_a_result_that_never_comes_is_reported_as_a_hang(build):
    """The per-result timeout: here shorter than one image's latency, so image 0 'hangs'; the
    harness still writes what it has and says what it saw, as the cocotb bench does."""
    from sim.native.bench import run_harness

    folder = load_build(build)
    images, _, _ = load_images(folder.net, 2)
    out = run_harness(compiled_model(folder.rtl, folder.top), folder.manifest, images, gap=0.0, stall=0.0, seed=1,
                      timeout=20)
    assert out["classes"] == [] and out["registers"] == {}
    assert out["error"].startswith("no result for image 0 within 20 cycles (0 of 2 came back, ")
    assert out["error"].endswith("): the design hangs") and "IMAGES_IN " in out["error"]


def test_ctrl_c_during_the_native_compile_exits_130_and_leaves_no_model(build, tmp_path):
    """Interrupted while Verilator compiles into an empty cache: one line, exit 130, and no
    binary nor half-built objects left behind (the next run compiles from scratch)."""
    cache = tmp_path / "cache" / "verilator"
    env = dict(os.environ, TERN_CACHE=str(tmp_path / "cache"))
    code, err = interrupt_when(["sim", "run", os.path.relpath(build, REPO), "--images", 1, "--jobs", 1],
                               lambda: bool(list(cache.glob("*/.obj-*"))), env=env)
    assert (code, err) == (130, "python -m sim run: interrupted\n")
    assert not list(cache.glob("*/tern_sim")) and not list(cache.glob("*/.obj-*"))
