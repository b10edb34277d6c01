"""How long `python -m gen build` takes on the shipped examples, from a cold synthesis cache.

    python -m benchmarks.build_time [--model examples/mnist_ternary_t2.pt ...] [--no-baseline]

Runs each build as users type it (`python -m gen build examples/X.pt --board pynq-z2` from
the repository root, into build/X) with an empty synthesis cache, so yosys really runs, and
records wall time, CPU time (the build process and its children: yosys, Verilator), each
step's time, the machine's load, the resources and the plan (engine and lanes per layer,
cycles per image). As a same-run baseline it then synthesises the first model's modules
again with plain `synth_xilinx` (block-RAM contents kept, see gen/backend/synth.py), and
reports the ratio.

Writes benchmarks/build_time.json and benchmarks/build_time.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.atomic import write_atomically
from gen.flow.build import build_name
from gen.backend.emit import TOP_MODULE
from gen.backend.synth import design_units, synthesise

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "examples" / "mnist_ternary_t2.pt"


def children_cpu_seconds() -> float:
    """User + system CPU of every child process this one has waited for (the build, and
    the build's own children: yosys, Verilator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds() -> float:
    """User + system CPU of this process and every child it has waited for."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + children_cpu_seconds()


def timed(fn):
    wall, cpu = time.monotonic(), cpu_seconds()
    result = fn()
    return result, round(time.monotonic() - wall, 2), round(cpu_seconds() - cpu, 2)


def synthesis_units(out: Path):
    """The build's own synthesis units, from its module list and RTLIL folder."""
    modules = json.loads((out / "steps" / "05_emit_rtl" / "modules.json").read_text())
    rtlil = out / "steps" / "05_emit_rtl" / "rtlil"
    layers = [m["module"] for m in modules]
    return design_units(layers, TOP_MODULE, [rtlil / f"{m}.il" for m in layers + [TOP_MODULE]])


def relative(model: Path) -> str:
    return str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model)


class BuildFailed(Exception):
    pass


def build_as_typed(model: Path, cache: Path) -> Path:
    """`python -m gen build <model> --board pynq-z2` from the repository root; its folder."""
    env = dict(os.environ, TERN_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "gen", "build", relative(model), "--board", "pynq-z2"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildFailed(f"exit {done.returncode}: {done.stderr.strip()[-2000:]}")
    return REPO / "build" / build_name(model)


def measure(model: Path, baseline: bool) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tern-build-time-") as tmp:
        tmp = Path(tmp)
        head = {"model": relative(model), "command": f"python -m gen build {relative(model)} --board pynq-z2",
                "cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before]}
        try:
            out, wall, cpu = timed(lambda: build_as_typed(model, tmp / "cache"))
        except BuildFailed as exc:     # a refusal (the plan does not fit) is a result too
            return dict(head, error=str(exc), load_average_after=[round(x, 2) for x in os.getloadavg()])
        report = json.loads((out / "report.json").read_text())
        result = {
            **head,
            "build": {"wall_s": wall, "cpu_s": cpu,
                      "steps": {s["name"]: s["seconds"] for s in report["steps"]},
                      "synthesis_cached": report["synthesis_cached"]},
            "resources": {k: v["used"] for k, v in report["resources"].items()},
            "fits": report["fits"],
            "plan": {"engines": {l["name"]: f"{l['engine']}×{l['lanes']}" for l in report["layers"]},
                     "cycles_per_image": report["cycles_per_image"],
                     "images_per_second": report["images_per_second"], "bottleneck": report["bottleneck"]},
        }
        if baseline:
            os.environ["TERN_CACHE_DIR"] = str(tmp / "cache-plain")
            util, wall, cpu = timed(lambda: synthesise(synthesis_units(out), tmp / "plain",
                                                       root=tmp, keep_bram_init=True))
            result["plain_synth_xilinx"] = {"wall_s": wall, "cpu_s": cpu,
                                            "resources": {"luts": util.luts, "ffs": util.ffs,
                                                          "bram36": util.bram36, "dsps": util.dsps}}
            result["synthesis_speedup"] = round(wall / result["build"]["steps"]["synthesise"], 2)
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def model_section(r: dict) -> list[str]:
    if "error" in r:
        return [f"## `{r['command']}`", "", f"Failed: {r['error']}"]
    b = r["build"]
    lines = [
        f"## `{r['command']}`",
        "",
        f"Empty synthesis cache, {r['cores']} cores, load average before {r['load_average_before'][0]}, "
        f"after {r['load_average_after'][0]}.",
        "",
        f"**{b['wall_s']:.1f} s wall**, {b['cpu_s']:.1f} s CPU (the build and yosys/Verilator).",
        *([f"", f"Note: {r['note']}"] if r.get("note") else []),
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {name} | {s:.1f} |" for name, s in b["steps"].items()),
        "",
        "Resources (yosys `synth_xilinx`): " + ", ".join(f"{k} {v:,g}" for k, v in r["resources"].items())
        + f"; fits the xc7z020: {r['fits']}.",
    ]
    if "plan" in r:
        plan = r["plan"]
        lines += ["", "Plan: " + ", ".join(f"{k} {v}" for k, v in plan["engines"].items())
                  + f"; {plan['cycles_per_image']:,.0f} cycles/image estimated ({plan['images_per_second']:,.0f} "
                  f"images/s at 100 MHz, bottleneck {plan['bottleneck']})."]
    if "plain_synth_xilinx" in r:
        p = r["plain_synth_xilinx"]
        lines += [
            "",
            "Baseline, same run: the same modules through plain `synth_xilinx` (block-RAM contents",
            f"kept) took {p['wall_s']:.1f} s wall ({p['cpu_s']:.1f} s CPU): the build's synthesis step is "
            f"{r['synthesis_speedup']:.2f}x faster. Its resources: "
            + ", ".join(f"{k} {v:,g}" for k, v in p["resources"].items()) + ".",
        ]
    return lines


def markdown(results: list[dict], git: str) -> str:
    lines = ["# Build time of the shipped examples", "",
             "`python -m benchmarks.build_time --model ...`: each build as users type it, from the repository "
             "root, with an empty synthesis cache. Wall times depend on the machine's load (the load average "
             "is given with each).", "",
             "| model | git | wall s | CPU s | engines (family×lanes) | cycles/image | LUT | FF | BRAM36 | DSP | fits |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('git', '?')} | failed | | | | | | | | |")
            continue
        res, plan = r["resources"], r.get("plan", {})
        engines = ", ".join(f"{k} {v}" for k, v in plan.get("engines", {}).items())
        lines.append(f"| {r['model']} | {r.get('git', '?')} | {r['build']['wall_s']:.0f} | {r['build']['cpu_s']:.0f} | {engines} | "
                     f"{plan.get('cycles_per_image', 0):,.0f} | {res.get('luts', 0):,} | {res.get('ffs', 0):,} | "
                     f"{res.get('bram36', 0):g} | {res.get('dsps', 0)} | {r.get('fits')} |")
    for r in results:
        lines += [""] + model_section(r)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.build_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, action="append",
                        help="checkpoint to build, repeatable (default: the shipped example)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain synth_xilinx baseline")
    args = parser.parse_args(argv)
    models = args.model or [EXAMPLE]
    for model in models:
        if not model.is_file():
            parser.error(f"no such checkpoint: {model}")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=REPO).stdout.strip()
    results = earlier_runs(models)
    for i, model in enumerate(models):
        results.append(dict(measure(model.resolve(), baseline=i == 0 and not args.no_baseline), git=git))
        # After each model, so that a long run leaves what it measured.
        write_atomically(HERE / "build_time.json", json.dumps({"git": git, "runs": results}, indent=2) + "\n")
        write_atomically(HERE / "build_time.md", markdown(results, git))
        print(f"{relative(model.resolve())}: {results[-1].get('build', {}).get('wall_s', 'failed')} s",
              file=sys.stderr, flush=True)
    print(markdown(results, git))
    return 1 if any("error" in r for r in results) else 0


def earlier_runs(models: list[Path]) -> list[dict]:
    """The recorded runs of the models this run does not build (each keeps its own git)."""
    path = HERE / "build_time.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    again = {relative(m.resolve()) for m in models}
    return [r for r in data.get("runs", []) if r.get("model") not in again]



if __name__ == "__main__":
    sys.exit(main())
