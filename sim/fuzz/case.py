"""One fuzz case: a recipe's checkpoint written, compiled, built with its plan, simulated, judged.

    outcome = run_case(recipe, workdir)
    outcome.verdict     # "exact", "refused" (a documented limit), or a bug:
                        # "mismatch", "golden", "lint", "internal", "undocumented"

The judge (issue 24): a refusal is correct only when docs/limits.md lists it and the message
names the layer (or, for a whole-model limit, says so); a lint failure, an internal error,
an RTL/golden mismatch, a golden/float64 mismatch or any other refusal is a bug.
"""
from __future__ import annotations

import logging
import shutil
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gen.boards import get_board
from gen.flow.build import BuildError, build
from gen.frontend import compile_checkpoint
from gen.ir.golden import run as golden_run
from gen.ir.random_net import random_images
from gen.ir.reference import run_reference
from gen.plan import candidate_families, make_plan
from sim.network import simulate_build
from sim.toolchain import have_icarus
from sim.fuzz.limits import judge_refusal
from sim.fuzz.space import checkpoint

log = logging.getLogger(__name__)

BUGS = ("mismatch", "golden", "lint", "internal", "undocumented")
VERDICTS = ("exact", "refused", *BUGS)
IMAGES = 3                   # per model: enough to exercise back-to-back images and state reset
PLAN_IMAGES = 4              # images the planner measures traffic on (cheap models plan fast)


@dataclass
class Outcome:
    verdict: str
    message: str = ""
    stage: str = ""           # where it happened: compile, golden, plan, build, simulate
    layers: list = field(default_factory=list)
    engines: dict = field(default_factory=dict)
    lanes: dict = field(default_factory=dict)

    @property
    def is_bug(self) -> bool:
        return self.verdict in BUGS

    def to_json(self) -> dict:
        return asdict(self)


def write_checkpoint(recipe: dict, path: Path) -> Path:
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint(recipe), path)
    return path


def golden_matches_float(net, images) -> str:
    """'' when the golden model equals the float64 fake-quantised model spike for spike and
    logit for logit (SPEC §4), else what differs."""

    golden = golden_run(net, images, record=True)
    reference = run_reference(net, images)
    for name, spikes in golden.spikes.items():
        if not np.array_equal(spikes, reference.spikes[name]):
            where = np.argwhere(spikes != reference.spikes[name])[0]
            return f"layer {name!r}: spike at {where.tolist()} is {int(spikes[tuple(where)])} in the golden model, " \
                   f"{int(reference.spikes[name][tuple(where)])} in the float64 model"
    scaled = reference.logit_sums * 2.0 ** int(net.readout.scale_exp[0])
    if not np.array_equal(golden.logits, scaled):
        return f"logits differ: golden {golden.logits[0].tolist()}, float64 {scaled[0].tolist()}"
    return ""


def forced_families(net, plan: str, rng) -> dict:
    """The engine family the recipe's plan asks of each layer ({} for the default plan):
    "dense" puts every layer that a dense engine can take on one, "mixed" draws one of the
    families that can take the layer (the planner's own candidates, gen.plan)."""

    if plan == "default":
        return {}
    chosen = {}
    for name, families in candidate_families(net, None).items():
        if plan == "event":
            chosen[name] = "event"
        elif plan == "dense":
            chosen[name] = "dense" if "dense" in families else "event"
        else:
            chosen[name] = str(rng.choice(sorted(families)))
    return chosen


def random_lanes(net, board, families: dict, images, rng) -> dict:
    """Random valid lanes per layer (the plan's own list of valid lanes)."""

    plan = make_plan(net, board, None, images, families=families or None)
    return {lp.name: int(rng.choice(lp.valid_lanes)) for lp in plan.layers}


def run_case(recipe: dict, workdir: Path, *, images: int = IMAGES, simulate=None, keep: bool = False,
             model: Path | None = None) -> Outcome:
    """Build and check one recipe in `workdir` (removed afterwards unless `keep`).

    `model` replays a saved checkpoint instead of writing the recipe's (the corpus);
    `simulate(build_dir, images, backpressure, seed)` runs the RTL (default: sim.network).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(recipe, workdir, images, simulate or default_simulate, model)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(recipe, workdir, images, simulate, model) -> Outcome:

    build_opts = recipe["build"]
    rng = np.random.default_rng(build_opts["seed"])
    stage = "compile"
    outcome = Outcome("exact")
    try:
        path = model or write_checkpoint(recipe, workdir / "model.pt")
        # gen's own front end, as `gen build` runs it (the recipe's wbits is the checkpoint's meta wbits)
        net = compile_checkpoint(path, recipe["wbits"]).network
        outcome.layers = [layer.name for layer in net.layers]
        stage = "golden"
        pixels = random_images(np.random.default_rng(recipe["seed"]), net.input_shape, images)
        differs = golden_matches_float(net, pixels)
        if differs:
            return _with(outcome, "golden", differs, stage)
        stage = "plan"
        board = get_board("pynq-z2")
        outcome.engines = forced_families(net, build_opts["plan"], rng)
        if build_opts["lanes"] == "random":
            outcome.lanes = random_lanes(net, board, outcome.engines, pixels[:PLAN_IMAGES], rng)
        stage = "build"
        out = workdir / "build"
        build(path, "pynq-z2", out, lanes=outcome.lanes or None, engines=outcome.engines or None,
              images=PLAN_IMAGES, synthesise=False, lint=True)
        stage = "simulate"
        result = simulate(out, images, build_opts["backpressure"], build_opts["seed"])
        if not result.ok:
            detail = "; ".join(map(str, result.mismatches[:3]))
            if result.diagnosis is not None:
                detail += f"; {result.diagnosis.summary()}"
            return _with(outcome, "mismatch", detail, stage)
        return outcome
    except BuildError as exc:
        verdict = "lint" if "lint" in str(exc) else "internal"
        return _with(outcome, verdict, _one_line(exc), stage)
    except ValueError as exc:     # a refusal: ModelError, PlanError, CheckpointError, ArchError
        verdict = "refused" if judge_refusal(str(exc), outcome.layers or _recipe_layer_names(recipe)) else "undocumented"
        return _with(outcome, verdict, _one_line(exc), stage)
    except Exception as exc:       # noqa: BLE001 - every other failure is a bug the fuzzer reports
        log.debug("internal error:\n%s", traceback.format_exc())
        return _with(outcome, "internal", f"{type(exc).__name__}: {_one_line(exc)}", stage)


def _recipe_layer_names(recipe: dict) -> list[str]:
    names = []
    for layer in checkpoint(recipe)["arch"]["layers"]:
        names.append(layer["name"])
        names += [inner["name"] for inner in layer.get("body", []) + layer.get("shortcut", [])]
    return names


def _with(outcome: Outcome, verdict: str, message: str, stage: str) -> Outcome:
    outcome.verdict, outcome.message, outcome.stage = verdict, message, stage
    return outcome


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:600]


# Icarus compiles a small model in about a second and the native bench in 8 s or more
# (benchmarks/native_sim.md), but Icarus runs some 3,000 cycles/s against the native
# bench's 100,000 or more: a model whose images take longer than this goes native.
ICARUS_CYCLES = 30_000


def simulated_cycles(build_dir: Path, images: int) -> int:
    """The plan's estimate of the cycles `images` images take (the build's report.json)."""
    import json

    report = json.loads((Path(build_dir) / "report.json").read_text())
    latency = int(report.get("latency_cycles") or 0)
    return latency + (images - 1) * int(report.get("cycles_per_image") or latency)


def default_simulate(build_dir: Path, images: int, backpressure: bool, seed: int):
    """Simulate on the bench that is cheapest for this model: Icarus through cocotb for the
    small ones, the native Verilator bench for the long ones."""

    if have_icarus() and simulated_cycles(build_dir, images) <= ICARUS_CYCLES:
        return simulate_build(build_dir, images, simulator="icarus", bench="cocotb", backpressure=backpressure,
                              seed=seed, quiet=True)
    return simulate_build(build_dir, images, simulator="verilator", bench="native", backpressure=backpressure,
                          seed=seed, quiet=True)
