"""Whole-network simulation of a Tern build folder, checked against the golden model.

    result = simulate_build("build/mnist", images=50, backpressure=True)
    result.mismatches          # [] when every logit and class is bit-exact
    result.report              # what sim_report.json holds

The build folder (gen/flow/build.py, docs/build.md) gives the Verilog (`manifest.json`
"files.rtl", top "top.module"), the packing of the AXI streams ("input", "output"), the
register map ("registers") and the IR ("files.ir"). Images stream through the top's real
AXI4-Stream slave back to back, results come back on its AXI4-Stream master, and the
counters are read over AXI4-Lite (sim/tb/network.py). Every logit and class, every
layer's event count and the image counters are compared with `gen.ir.golden.run` on the
IR saved in the build, so the check needs nothing but the folder.

Two benches drive the top. The native one (default, Verilator only: sim/native/) is the
build's top compiled with a C++ harness, cached per RTL, that runs the whole stream with no
Python per cycle; `jobs` and `cluster` split the images into chunks run in parallel
processes or on a Dask cluster (sim/native/chunks.py) and merge their reports. The cocotb
one (sim/tb/network.py, `bench="cocotb"`) runs on Verilator or Icarus, and is the one that
records waveforms and probes the spikes between layers. Both give the same results and,
without back-pressure, the same cycle stamps (tests/test_sim_native.py).

On a mismatch the first differing image is simulated again alone with probes on the
spike streams between the layers, events or dense maps (sim/diagnose.py), which names the first layer, step
and neuron whose spike differs.
"""
from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from formats.errors import NotATernBuild
from formats.manifest import parse_manifest
from formats.mnist import load_mnist
from gen.ir.golden import fanout, run as golden_run
from gen.ir.irfile import IRFileError, load, model_id as compute_id
from gen.ir.random_net import random_images
from sim.axis import CLOCK_PERIOD_NS, pack_images
from sim.diagnose import diagnose
from sim.native.bench import arrays, run_harness
import sim.native.chunks as native_chunks   # a cycle: it calls back into this module; names are read at call time
from sim.native.model import CompileError, compiled_model
from sim.runner import (SimulationFailed, check_simulator, copy_sources, output_to, run_lean_verilator,
                        run_testbench)
from sim.tb.harness import kick_comb_blocks_at_time_zero

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
REPORT = "sim_report.json"
MANIFEST_FORMAT = "tern-build"
MNIST_SHAPE = (1, 28, 28)
HELDOUT_SIZE = 2000
RANDOM_IMAGE_SEED = 0
BACKPRESSURE_GAP = 0.3        # probability per cycle of holding TVALID low before an input beat
BACKPRESSURE_STALL = 0.3      # probability per cycle of TREADY low on the output
WAVE_IMAGES = 2               # --waves records the first images only (waveforms grow fast)
TB_MODULE = "sim.tb.network"
BENCHES = ("native", "cocotb")
CLOCK_HZ = 1e9 / CLOCK_PERIOD_NS


class BuildFolderError(ValueError):
    """The folder is not a complete Tern build (the message is one line)."""


class SimulationError(RuntimeError):
    """The simulation itself went wrong (hang, protocol error); the message is one line."""


# --------------------------------------------------------------------------- the build folder


@dataclass(frozen=True)
class BuildFolder:
    path: Path
    manifest: dict
    net: object                       # gen.ir.Network, loaded from the build's IR files
    report: dict | None               # report.json (resources, estimate), if present

    @property
    def rtl(self) -> list[Path]:
        return [self.path / f for f in self.manifest["files"]["rtl"]]

    @property
    def top(self) -> str:
        return self.manifest["top"]["module"]

    @property
    def layer_names(self) -> list[str]:
        return [layer["name"] for layer in self.manifest["layers"]]


def load_build(path) -> BuildFolder:
    """Read and check a build folder; raises BuildFolderError with a one-line reason.

    The manifest is validated by formats.manifest, the host driver's own reader (one definition of what a
    manifest must hold: known version, register map, file names inside the folder), and its
    model ID must be the ID of the IR it names, which the IR file's own hash guards.
    """
    path = Path(path).resolve()
    if not path.is_dir():
        raise BuildFolderError(f"build folder not found: {path}")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        hint = " (a failed build leaves <out>.failed)" if path.name.endswith(".failed") else ""
        raise BuildFolderError(f"{path} is not a complete build: no {MANIFEST}{hint}; "
                               f"run python -m gen build MODEL --out {path}")
    manifest = _read_json(manifest_path)
    try:
        info = parse_manifest(manifest, manifest_path, path)
    except NotATernBuild as exc:
        raise BuildFolderError(str(exc)) from None
    _check_layout(manifest, manifest_path)
    for name in manifest["files"]["rtl"] + manifest["files"]["ir"]:
        if not (path / name).resolve().is_relative_to(path):
            raise BuildFolderError(f"{manifest_path}: {name!r} leads outside the build folder (a link)")
    missing = [f for f in manifest["files"]["rtl"] if not (path / f).is_file()]
    if missing:
        raise BuildFolderError(f"{path} is incomplete: missing {', '.join(missing)}")
    ir_json = next((f for f in manifest["files"]["ir"] if f.endswith(".json")), None)
    if ir_json is None:
        raise BuildFolderError(f"{manifest_path}: files.ir must name the IR's .json file")
    try:
        net = load(path / ir_json)
    except IRFileError as exc:
        raise BuildFolderError(f"{path} is incomplete: {' '.join(str(exc).split())}") from None
    if compute_id(net) != info.model_id:
        raise BuildFolderError(f"{path}: the IR {ir_json} is not the model of the manifest "
                               f"(model ID {compute_id(net):#010x}, manifest {info.model_id:#010x})")
    report = None
    if (path / "report.json").is_file():
        report = _read_json(path / "report.json")
    return BuildFolder(path=path, manifest=manifest, net=net, report=report if isinstance(report, dict) else None)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BuildFolderError(f"{path} must be JSON written by python -m gen build: "
                               f"{' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise BuildFolderError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _check_layout(manifest: dict, where: Path) -> None:
    """What the testbench reads beyond the host's part: the top module and the layers."""
    top = manifest.get("top")
    if not isinstance(top, dict) or not isinstance(top.get("module"), str) \
            or not top["module"].replace("_", "a").isalnum():
        raise BuildFolderError(f"{where}: top.module must be a Verilog module name, not {top!r:.60}")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers or not all(
            isinstance(l, dict) and isinstance(l.get("name"), str) and isinstance(l.get("kind"), str)
            and not isinstance(l.get("lanes"), bool) and isinstance(l.get("lanes"), int) and l["lanes"] >= 1
            for l in layers):
        raise BuildFolderError(f"{where}: layers must be a non-empty list of {{name, kind, lanes >= 1}}, "
                               f"not {layers!r:.60}")
    for key in ("input", "output"):
        if not isinstance(manifest.get(key), dict):
            raise BuildFolderError(f"{where}: field {key!r} must be an object")


def check_report_path(report) -> Path | None:
    """The --report path, absolute, refused before any simulation if it cannot be written
    (a missing folder, a folder in its place): a late failure would lose the whole run."""
    if report is None:
        return None
    path = Path(report).resolve()
    if path.is_dir():
        raise BuildFolderError(f"--report must be a file name, not the folder {path}")
    if not path.parent.is_dir():
        raise BuildFolderError(f"--report must be in an existing folder, not {path} ({path.parent} does not exist)")
    if not os.access(path.parent, os.W_OK):
        raise BuildFolderError(f"--report must be in a folder you can write, not {path.parent}")
    return path


def write_report(path: Path, report: dict) -> None:
    """Write the report through a temporary file and a rename: never a half-written report."""
    text = json.dumps(report, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- images


def load_images(net, count: int, start: int = 0) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Held-out MNIST images 8000+start... for an MNIST-shaped net, seeded random images otherwise.

    Returns (uint8 images, labels or None, a description).
    """
    check_images(net, count, start)
    if tuple(net.input_shape) == MNIST_SHAPE:
        images, labels = load_mnist(split="heldout", limit=count, start=start)
        return images, labels, images_source(net, count, start)
    images = random_images(np.random.default_rng(RANDOM_IMAGE_SEED), net.input_shape, start + count)[start:]
    return images, None, images_source(net, count, start)


def check_images(net, count, start) -> None:
    """Refuse a count or start that load_images cannot serve (ValueError, one line)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"images must be a positive integer, not {count!r}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative integer, not {start!r}")
    if tuple(net.input_shape) == MNIST_SHAPE and start + count > HELDOUT_SIZE:
        raise ValueError(f"start + images must be at most {HELDOUT_SIZE} (the held-out set), not {start + count}")


def images_source(net, count: int, start: int = 0) -> str:
    """The report's description of load_images(net, count, start)."""
    if tuple(net.input_shape) == MNIST_SHAPE:
        return f"held-out MNIST images {8000 + start}..{8000 + start + count - 1}"
    return f"random images {start}..{start + count - 1} (seed {RANDOM_IMAGE_SEED})"


# --------------------------------------------------------------------------- one simulator run


@dataclass
class RawRun:
    """What the testbench measured (sim/tb/network.py writes it)."""
    logits: np.ndarray                # int64 [n, K], rows of images that came back
    classes: np.ndarray               # int64 [n]
    in_cycles: np.ndarray             # int64 [n, 2]: first and last input beat accepted
    out_cycles: np.ndarray            # int64 [n, 2]: first and last result beat sent
    registers: dict                   # name -> value at the end
    identity: dict                    # MAGIC, MODEL_ID, ... read at the start
    event_counts: dict                # layer -> counter value at the end
    probes: dict                      # layer -> list of (step, addr, neg), with probe=True
    error: str | None
    seed: int


def timeout_cycles(build: BuildFolder) -> int:
    """How long to wait for one result before calling the design hung (generous: a
    miscount here only makes a hang take longer to report)."""
    estimate = 0
    if build.report:
        estimate = max(build.report.get("latency_cycles") or 0, build.report.get("cycles_per_image") or 0)
    return int(max(100_000, 20 * estimate))


def check_bench(bench: str | None, simulator: str, *, waves: bool = False, probe: bool = False) -> str:
    """The bench a run uses: native by default on Verilator; cocotb for Icarus, waveforms and
    probes (the native harness records neither). An explicit "native" it cannot honour is refused."""
    if bench is not None and bench not in BENCHES:
        raise ValueError(f"bench must be one of {', '.join(BENCHES)}, not {bench!r}")
    cocotb_only = [why for why, needed in ((f"the {simulator} simulator", simulator != "verilator"),
                                           ("waveforms", waves), ("probes", probe)) if needed]
    if bench == "native" and cocotb_only:
        raise ValueError(f"the native bench runs Verilator without waveforms or probes: {cocotb_only[0]} "
                         f"needs the cocotb bench")
    return bench or ("cocotb" if cocotb_only else "native")


def native_model(build: BuildFolder) -> Path:
    """The build's compiled native model (sim/native/model.py: compiled once per RTL, cached)."""
    try:
        return compiled_model(build.rtl, build.top)
    except CompileError as exc:
        raise SimulationError(str(exc)) from None


def run_native(build: BuildFolder, images: np.ndarray, *, backpressure: bool = False, seed: int,
               progress: bool = False, label: str = "") -> RawRun:
    """Stream `images` through the build's compiled model (sim/native/harness.cpp)."""
    binary = native_model(build)
    log.info("simulating %d images on %s (native %s, seed %d, back-pressure %s)", len(images), build.top,
             binary, seed, backpressure)
    bar = progress_bar(len(images), progress, label)
    try:
        out = run_harness(binary, build.manifest, images, gap=BACKPRESSURE_GAP if backpressure else 0.0,
                          stall=BACKPRESSURE_STALL if backpressure else 0.0, seed=seed,
                          timeout=timeout_cycles(build), progress=None if bar is None else bar.update_to)
    except RuntimeError as exc:
        raise SimulationError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    return RawRun(**arrays(out, int(build.manifest["output"]["num_classes"])), registers=out["registers"],
                  identity=out["identity"], event_counts=out["event_counts"], probes={}, error=out["error"],
                  seed=seed)


def progress_bar(total: int, enabled: bool, label: str):
    """A tqdm bar on stderr with `update_to(done)`, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="img", desc=label or "simulating", dynamic_ncols=True, leave=False)
    bar.update_to = lambda done: bar.update(done - bar.n)
    return bar


def run_simulator(build: BuildFolder, images: np.ndarray, *, simulator: str = "verilator",
                  backpressure: bool = False, seed: int | None = None, waves: bool = False,
                  probe: bool = False, expected: np.ndarray | None = None, progress: bool = False,
                  work: Path | None = None, quiet: bool = False, label: str = "",
                  bench: str | None = None) -> RawRun:
    """Stream `images` through the build's top in one simulator run; returns the measurements.
    `bench` None picks the native one where it can (check_bench)."""
    seed = random.randrange(1 << 31) if seed is None else int(seed)
    if check_bench(bench, simulator, waves=waves, probe=probe) == "native":
        return run_native(build, images, backpressure=backpressure, seed=seed, progress=progress, label=label)
    sim_dir = build.path / "sim" / (simulator + ("-waves" if waves else ""))
    sim_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work or sim_dir, prefix=".run-") as tmp:
        tmp = Path(tmp).resolve()        # the testbench runs in another folder: absolute paths only
        np.save(tmp / "beats.npy", pack_images(images, build.manifest["input"]))
        if expected is not None:
            np.save(tmp / "expected.npy", np.asarray(expected, np.int64))
        params = {
            "beats": str(tmp / "beats.npy"), "expected": str(tmp / "expected.npy") if expected is not None else None,
            "out": str(tmp / "results.npz"), "manifest": str(build.path / MANIFEST),
            "gap": BACKPRESSURE_GAP if backpressure else 0.0, "stall": BACKPRESSURE_STALL if backpressure else 0.0,
            "probe": probe, "timeout_cycles": timeout_cycles(build), "progress": progress, "label": label,
        }
        log.info("simulating %d images on %s (%s, seed %d, back-pressure %s)", len(images), build.top,
                 simulator, seed, backpressure)
        failure = None
        with output_to(sim_dir / "sim.log" if quiet else None):
            try:
                sources = simulation_sources(build, simulator, sim_dir)
                if simulator == "verilator":
                    run_lean_verilator(sources, build.top, TB_MODULE, sim_dir / "build", params=params, seed=seed,
                                       waves=waves, build_log=sim_dir / "sim.log" if quiet else None)
                else:
                    run_testbench(sources, build.top, TB_MODULE, sim_dir / "build", params=params,
                                  simulator=simulator, seed=seed, waves=waves)
            except SimulationFailed as exc:
                failure = str(exc)
            except RuntimeError as exc:        # the simulator or its compiler failed
                raise SimulationError(f"{simulator} failed: {exc} (see {sim_dir / 'sim.log'})") from None
        if not (tmp / "results.npz").is_file():
            raise SimulationError(failure or f"the testbench wrote no results (see {sim_dir})")
        raw = _read_results(tmp / "results.npz", seed)
        if failure and not raw.error:
            raw.error = failure
        return raw


def simulation_sources(build: BuildFolder, simulator: str, sim_dir: Path) -> list[Path]:
    """The build's Verilog as the simulator should read it.

    Icarus never runs an `always @*` block whose inputs keep their initial values, so its
    outputs would stay X; sim.tb.harness's kick runs each block once at time 0 (the design
    is unchanged). The build folder itself is never edited: Icarus gets copies.
    """
    if simulator != "icarus":
        return build.rtl
    return copy_sources(build.rtl, sim_dir / "rtl", kick_comb_blocks_at_time_zero)


def _read_results(path: Path, seed: int) -> RawRun:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        probes = {}
        for layer in meta.get("probed", []):
            probes[layer] = data[f"probe_{layer}"]
        return RawRun(logits=data["logits"], classes=data["classes"], in_cycles=data["in_cycles"],
                      out_cycles=data["out_cycles"], registers=meta["registers"], identity=meta["identity"],
                      event_counts=meta["event_counts"], probes=probes, error=meta.get("error"), seed=seed)


# --------------------------------------------------------------------------- checking and the report


@dataclass
class Mismatch:
    image: int                       # index within this run
    what: str                        # one line

    def __str__(self):
        return f"image {self.image}: {self.what}"


def compare(build: BuildFolder, golden, raw: RawRun, n: int) -> list[Mismatch]:
    """Every difference between the simulated run and the golden model, first image first."""
    out = []
    manifest = build.manifest
    got = len(raw.classes)
    for i in range(min(n, got)):
        exp_logits, exp_cls = golden.logits[i], int(golden.classes[i])
        if not np.array_equal(raw.logits[i], exp_logits) or int(raw.classes[i]) != exp_cls:
            diff = np.flatnonzero(raw.logits[i] != exp_logits)
            detail = (f"logit[{diff[0]}] = {int(raw.logits[i][diff[0]])}, golden {int(exp_logits[diff[0]])}"
                      if diff.size else "logits equal")
            out.append(Mismatch(i, f"class {int(raw.classes[i])}, golden {exp_cls}; {detail}"))
    if got < n:
        out.append(Mismatch(got, f"no result ({got} of {n} came back): {raw.error or 'unknown'}"))
        return out
    regs = raw.registers
    if raw.identity.get("MAGIC") is not None:
        if raw.identity.get("MODEL_ID") != manifest["model"]["model_id"]:
            out.append(Mismatch(-1, f"MODEL_ID reads {raw.identity.get('MODEL_ID'):#010x}, manifest says "
                                    f"{manifest['model']['model_id']:#010x}"))
    for name, expected in (("IMAGES_IN", n), ("IMAGES_OUT", n), ("ERRORS", 0)):
        if name in regs and regs[name] != expected:
            out.append(Mismatch(-1, f"register {name} reads {regs[name]}, expected {expected}"))
    for layer in build.net.layers[:-1]:
        expected = int(golden.events[layer.name].sum()) & 0xFFFFFFFF
        measured = raw.event_counts.get(layer.name)
        if measured is not None and measured != expected:
            out.append(Mismatch(-1, f"layer {layer.name} sent {measured} events, golden {expected}"))
    if raw.error:
        out.append(Mismatch(-1, raw.error))
    return out


def encoding_sops(net, images: np.ndarray) -> np.ndarray:
    """Multiply-accumulates of the encoding layer per image: non-zero pixels × their fan-out
    (it works once per image; the golden model counts SOPs of spike-driven layers only)."""
    layer = net.layers[0]
    total = np.zeros(len(images), np.int64)
    for p in layer.projections:
        f = fanout(p.op, p.weight, tuple(net.input_shape), layer.shape).reshape(-1)
        total += (images.reshape(len(images), -1) != 0).astype(np.int64) @ f
    return total


def make_report(build: BuildFolder, golden, raw: RawRun, images: np.ndarray, mismatches, *,
                simulator: str, backpressure: bool, source: str, start: int) -> dict:
    n = len(images)
    done = len(raw.classes)
    latency = int(raw.out_cycles[0, 1] - raw.in_cycles[0, 0]) if done else None
    steady = None
    if done >= 2:
        steady = float(raw.out_cycles[done - 1, 1] - raw.out_cycles[0, 1]) / (done - 1)
    sops = {layer.name: golden.sops[layer.name].sum(axis=1).astype(np.float64) for layer in build.net.layers}
    sops[build.net.layers[0].name] = encoding_sops(build.net, images).astype(np.float64)
    layers = []
    for entry in build.manifest["layers"]:
        name, lanes = entry["name"], int(entry["lanes"])
        per_image = float(sops[name].mean())
        # The interval is measured between results 0 and n-1, i.e. over the work of images
        # 1..n-1: utilisation uses their SOPs (with few images, image 0's would skew it).
        window = float(sops[name][1:done].mean()) if done >= 2 else per_image
        events = float(golden.events[name].sum(axis=1).mean()) if name in golden.events else None
        family = entry.get("engine_family", "event")
        # An event lane does one synaptic op per cycle, so SOPs / (lanes · cycles) is its busy
        # share. A dense lane adds a whole window of taps per cycle, zeros included: the ratio
        # says nothing there (docs/hardware.md), so it is not given.
        utilisation = round(window / lanes / steady, 4) if steady and family == "event" else None
        layers.append({"name": name, "kind": entry["kind"], "engine_family": family, "lanes": lanes,
                       "sops_per_image": round(per_image, 1),
                       "events_per_image": None if events is None else round(events, 1),
                       "lane_utilisation": utilisation})
    estimate = None
    if build.report:
        estimate = {k: build.report.get(k) for k in ("cycles_per_image", "latency_cycles", "images_per_second")}
    accuracy = None
    labels = getattr(golden, "labels", None)
    if labels is not None and done:
        accuracy = float(np.mean(raw.classes == labels[:done]))
    return {
        "build": str(build.path), "model": build.manifest.get("model", {}).get("name"),
        "model_id": build.manifest.get("model", {}).get("model_id_hex"),
        "simulator": simulator, "seed": raw.seed, "backpressure": backpressure,
        "images": n, "images_source": source, "start": start, "results": done,
        "mismatches": len(mismatches), "first_mismatches": [str(m) for m in mismatches[:10]],
        "bit_exact": not mismatches,
        "accuracy": accuracy,
        "latency_cycles": latency,
        "cycles_per_image": None if steady is None else round(steady, 2),
        "images_per_second_at_100mhz": None if not steady else round(CLOCK_HZ / steady, 1),
        "busy_cycles": _busy_cycles(raw.registers),
        "result_cycles": [int(c) for c in raw.out_cycles[:done, 1]],   # each result's last beat
        "sops_per_image": round(float(sum(v.mean() for v in sops.values())), 1),
        "layers": layers,
        "estimate": estimate,
        "registers": raw.registers,
    }


def _busy_cycles(regs: dict):
    if "BUSY_CYCLES_LO" in regs and "BUSY_CYCLES_HI" in regs:
        return (regs["BUSY_CYCLES_HI"] << 32) | regs["BUSY_CYCLES_LO"]
    return None


# --------------------------------------------------------------------------- the whole check


@dataclass
class SimResult:
    report: dict
    mismatches: list = field(default_factory=list)
    diagnosis: object = None          # sim.diagnose.Diagnosis on a mismatch (or with debug)
    waves: Path | None = None
    report_path: Path | None = None
    classes: np.ndarray | None = None  # the class of each image that came back, in order

    @property
    def ok(self) -> bool:
        return not self.mismatches


def simulate_build(build_dir, images: int = 50, *, start: int = 0, simulator: str = "verilator",
                   backpressure: bool = False, seed: int | None = None, waves: bool = False,
                   debug: bool = False, report: Path | None = None, progress: bool = False,
                   quiet: bool = False, bench: str | None = None, jobs: int = 1,
                   cluster: str | None = None) -> SimResult:
    """Simulate `images` images of a build folder and check them against the golden model.

    `bench` is "native" (the default on Verilator: the compiled C++ harness) or "cocotb"
    (Icarus too); --waves and the probes of --debug or of a mismatch's diagnosis always run
    on the cocotb bench. With `jobs` > 1 (native only) the images are split into that many
    chunks simulated in parallel processes, or on the Dask scheduler at `cluster`, and the
    chunks' reports are merged (sim/reports.py).

    Writes sim_report.json into the build folder (or `report`). Raises BuildFolderError for
    a missing/incomplete folder, ValueError for bad arguments, SimulationError when the
    simulator cannot run; a mismatch is not an exception: see SimResult.mismatches.
    """
    check_simulator(simulator)
    bench = check_bench(bench, simulator)
    chunks = check_jobs(jobs, cluster, bench, images)
    report = check_report_path(report)
    build = load_build(build_dir)
    check_images(build.net, images, start)
    seed = random.randrange(1 << 31) if seed is None else int(seed)
    log.info("seed %d", seed)
    if chunks > 1 or cluster:
        result = native_chunks.simulate_chunks(build, images, start=start, chunks=chunks, backpressure=backpressure,
                                 seed=seed, cluster=cluster, progress=progress)
    else:
        result = simulate_images(build, images, start=start, simulator=simulator, bench=bench,
                                 backpressure=backpressure, seed=seed, progress=progress, quiet=quiet)
    if result.mismatches or debug:
        first = next((m.image for m in result.mismatches if m.image >= 0), 0)
        result.diagnosis = probe_image(build, min(first, images - 1), start=start, simulator=simulator,
                                       seed=seed, quiet=quiet)
        result.report["diagnosis"] = result.diagnosis.to_json()
    if waves:
        count = min(WAVE_IMAGES, images)
        pixels, _, _ = load_images(build.net, count, start)
        run_simulator(build, pixels, simulator=simulator, seed=seed, waves=True, quiet=quiet, bench="cocotb")
        found = sorted((build.path / "sim" / f"{simulator}-waves").rglob("*.[fv][sc][td]"))
        result.waves = found[0] if found else None
        result.report["waves"] = {"file": str(result.waves) if result.waves else None, "images": count}
    path = report if report is not None else build.path / REPORT
    write_report(path, result.report)
    result.report_path = path
    return result


def check_jobs(jobs, cluster, bench: str, images) -> int:
    """How many chunks to simulate: `jobs`, at most one per image; more than one needs the native bench."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    if (jobs > 1 or cluster) and bench != "native":
        raise ValueError("--jobs and --cluster split the images across native runs: they cannot be used "
                         "with the cocotb bench")
    if isinstance(images, int) and not isinstance(images, bool) and images >= 1:
        return min(jobs, images)
    return jobs                        # check_images refuses the count with its own message


def simulate_images(build: BuildFolder, images: int, *, start: int = 0, simulator: str = "verilator",
                    bench: str = "native", backpressure: bool = False, seed: int, progress: bool = False,
                    quiet: bool = False, offset: int = 0, total: int | None = None,
                    label: str = "") -> SimResult:
    """One simulator run of images offset..offset+images-1 of a run of `total` images from
    `start` (a chunk; offset 0 and total None for a whole run), compared with the golden
    model; the report is not written. A chunk's images are cut from the whole run's: random
    images drawn for fewer or from a later start are other images (gen.ir.random_net's
    random_images draws its zeros after all the pixels)."""
    pixels, labels, _ = load_images(build.net, total or offset + images, start)
    pixels = pixels[offset:offset + images]
    labels = None if labels is None else labels[offset:offset + images]
    source = images_source(build.net, images, start + offset)
    golden = golden_run(build.net, pixels, record=True)
    golden.labels = labels
    raw = run_simulator(build, pixels, simulator=simulator, bench=bench, backpressure=backpressure, seed=seed,
                        expected=golden.classes, progress=progress, quiet=quiet, label=label)
    mismatches = [Mismatch(m.image + offset if m.image >= 0 else m.image, m.what)
                  for m in compare(build, golden, raw, len(pixels))]
    report = make_report(build, golden, raw, pixels, mismatches, simulator=simulator, backpressure=backpressure,
                         source=source, start=start + offset)
    report["bench"] = bench
    return SimResult(report=report, mismatches=mismatches, classes=raw.classes)


def probe_image(build: BuildFolder, image: int, *, start: int, simulator: str, seed: int, quiet: bool):
    """Image start+image simulated alone with probes on the spikes between layers (cocotb bench),
    diagnosed against the golden model (sim/diagnose.py)."""
    pixels, _, _ = load_images(build.net, 1, start + image)
    probe_raw = run_simulator(build, pixels, simulator=simulator, seed=seed, probe=True, quiet=quiet,
                              bench="cocotb")
    single = golden_run(build.net, pixels, record=True)
    return diagnose(build, single, probe_raw, image=start + image)
