"""How long `python -m gen build` takes on the shipped example, from a cold synthesis cache.

    python -m benchmarks.build_time [--model examples/mnist_ternary_t2.pt] [--no-baseline]

Runs the whole build (the README's first command, minus the setup) with an empty synthesis
cache, so yosys really runs, and records wall time, CPU time (this process and its
children: yosys, Verilator), each step's time and the machine's load. As a same-run
baseline it then synthesises the same modules again with plain `synth_xilinx` (block-RAM
contents kept, see gen/backend/synth.py), and reports the ratio.

Writes benchmarks/build_time.json and benchmarks/build_time.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from gen.flow.build import build
from gen.backend.emit import TOP_MODULE
from gen.backend.synth import design_units, synthesise

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "examples" / "mnist_ternary_t2.pt"


def cpu_seconds() -> float:
    """User + system CPU of this process and every child it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


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


def measure(model: Path, baseline: bool) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tern-build-time-") as tmp:
        tmp = Path(tmp)
        os.environ["TERN_CACHE_DIR"] = str(tmp / "cache")
        report, wall, cpu = timed(lambda: build(model, out=tmp / "out"))
        result = {
            "model": str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model),
            "cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
            "build": {"wall_s": wall, "cpu_s": cpu,
                      "steps": {s["name"]: s["seconds"] for s in report["steps"]},
                      "synthesis_cached": report["synthesis_cached"]},
            "resources": {k: v["used"] for k, v in report["resources"].items()},
        }
        if baseline:
            os.environ["TERN_CACHE_DIR"] = str(tmp / "cache-plain")
            util, wall, cpu = timed(lambda: synthesise(synthesis_units(tmp / "out"), tmp / "plain",
                                                       root=tmp, keep_bram_init=True))
            result["plain_synth_xilinx"] = {"wall_s": wall, "cpu_s": cpu,
                                            "resources": {"luts": util.luts, "ffs": util.ffs,
                                                          "bram36": util.bram36, "dsps": util.dsps}}
            result["synthesis_speedup"] = round(wall / result["build"]["steps"]["synthesise"], 2)
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def markdown(r: dict) -> str:
    b = r["build"]
    lines = [
        "# Build time of the shipped example",
        "",
        f"`python -m benchmarks.build_time`: `python -m gen build {r['model']} --board pynq-z2` with an empty",
        f"synthesis cache on {r['cores']} cores (load average before {r['load_average_before'][0]}, "
        f"after {r['load_average_after'][0]}).",
        "",
        f"**{b['wall_s']:.1f} s wall**, {b['cpu_s']:.1f} s CPU (this process and yosys/Verilator).",
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {name} | {s:.1f} |" for name, s in b["steps"].items()),
        "",
        "Resources: " + ", ".join(f"{k} {v:,g}" for k, v in r["resources"].items()) + ".",
    ]
    if "plain_synth_xilinx" in r:
        p = r["plain_synth_xilinx"]
        lines += [
            "",
            "Baseline, same run: the same modules through plain `synth_xilinx` (block-RAM contents",
            f"kept) took {p['wall_s']:.1f} s wall ({p['cpu_s']:.1f} s CPU): the build's synthesis step is "
            f"{r['synthesis_speedup']:.2f}x faster. Its resources: "
            + ", ".join(f"{k} {v:,g}" for k, v in p["resources"].items()) + ".",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.build_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=EXAMPLE, help="checkpoint to build (default: the shipped example)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain synth_xilinx baseline")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"no such checkpoint: {args.model}")
    result = measure(args.model.resolve(), baseline=not args.no_baseline)
    (HERE / "build_time.json").write_text(json.dumps(result, indent=2) + "\n")
    (HERE / "build_time.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
