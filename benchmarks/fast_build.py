"""The fast model's build at 100,000 images/s: `gen build --target-fps 100000` of
examples/mnist_fast_t1.pt for the PYNQ-Z2, synthesised whole by yosys; the plan's cycles per
image and the resources of its report (yosys and the planner's estimate, per module).

    nice .venv/bin/python benchmarks/fast_build.py [--build DIR] [--out benchmarks]

Runs exactly the command a user types (from the repository root) into DIR (default
build/mnist_fast_t1_100k; the synthesis cache makes a rerun quick), then writes
fast_build.json and fast_build.md. Cycles per image are the plan's: the dense engines'
schedules are exact and data-independent (hw.dense_conv.schedule_cycles, equal to
simulation); images/s at 100 MHz from simulation of 2,000 held-out images is
benchmarks/throughput.py's.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "examples/mnist_fast_t1.pt"
TARGET_FPS = 100000


def command(build: Path) -> list[str]:
    return [sys.executable, "-m", "gen", "build", MODEL, "--board", "pynq-z2", "--target-fps", str(TARGET_FPS),
            "--out", str(build)]


def summary(report: dict, plan: dict, cmd: list[str]) -> dict:
    """The figures of a build's report.json and its plan (steps/04_plan/plan.json)."""
    layers = [{"name": lp["name"], "kind": lp["kind"], "family": lp["family"], "engine": lp["engine"],
               "lanes": lp["lanes"], "cycles_per_image": lp["cycles"], "estimate": lp["estimate"]}
              for lp in plan["layers"]]
    return {"command": " ".join(["python"] + cmd[1:]), "model": report["model"], "board": report["board"],
            "part": report["part"], "clock_mhz": report["clock_mhz"], "fits": report["fits"],
            "cycles_per_image": report["cycles_per_image"], "images_per_second": report["images_per_second"],
            "latency_cycles": report["latency_cycles"], "bottleneck": report["bottleneck"],
            "resources": {k: v["used"] for k, v in report["resources"].items()},
            "available": {k: v["available"] for k, v in report["resources"].items()}, "estimate": report["estimate"],
            "resources_per_module": report["resources_per_module"],
            "synthesis_seconds": report["synthesis_seconds"], "layers": layers}


def markdown(s: dict) -> str:
    r, e = s["resources"], s["estimate"]
    lines = [
        "# The fast model's build at 100,000 images/s",
        "",
        f"`{s['command']}` (from the repository root): {s['model']} on {s['board']} ({s['part']}), whole build "
        f"synthesised by yosys `synth_xilinx` (gen/backend/synth.py). Fits: **{s['fits']}**.",
        "",
        f"**{s['cycles_per_image']:,.0f} cycles/image, {s['images_per_second']:,.0f} images/s at "
        f"{s['clock_mhz']:g} MHz** (the plan's; bottleneck `{s['bottleneck']}`; latency about "
        f"{s['latency_cycles']:,.0f} cycles).",
        "",
        "| | LUT | FF | BRAM36 | DSP |",
        "|---|---|---|---|---|",
        f"| yosys (whole build) | {r['luts']:,} | {r['ffs']:,} | {r['bram36']:g} | {r['dsps']} |",
        f"| planner's estimate | {e['luts']:,} | {e['ffs']:,} | {e['bram36']:g} | {e['dsps']} |",
        f"| {s['part']} | {s['available']['luts']:,} | {s['available']['ffs']:,} | {s['available']['bram36']:g} "
        f"| {s['available']['dsps']} |",
        "",
        "| layer | engine | lanes | cycles/image | LUT (yosys) | LUT (estimate) | FF (yosys) | FF (estimate) "
        "| BRAM36 (yosys) | DSP (yosys) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    per = s["resources_per_module"]
    for lp in s["layers"]:
        m = per.get(f"tern_{lp['name']}", {})
        lines.append(f"| {lp['name']} | {lp['engine']} | {lp['lanes']} | {lp['cycles_per_image']:,.0f} | "
                     f"{m.get('luts', 0):,} | {lp['estimate']['luts']:,} | {m.get('ffs', 0):,} | "
                     f"{lp['estimate']['ffs']:,} | {m.get('bram36', 0):g} | {m.get('dsps', 0)} |")
    top = per.get("tern_top", {})
    lines += [f"| top | tern_top | | | {top.get('luts', 0):,} | | {top.get('ffs', 0):,} | | "
              f"{top.get('bram36', 0):g} | {top.get('dsps', 0)} |", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=Path("build") / "mnist_fast_t1_100k")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    args = parser.parse_args(argv)
    cmd = command(args.build)
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        print(f"fast_build: {' '.join(cmd)} failed (exit {done.returncode})", file=sys.stderr)
        return 1
    build = ROOT / args.build
    s = summary(json.loads((build / "report.json").read_text()),
                json.loads((build / "steps" / "04_plan" / "plan.json").read_text()), cmd)
    print(json.dumps({k: v for k, v in s.items() if k != "layers"}))
    for name, text in (("fast_build.json", json.dumps(s, indent=1) + "\n"), ("fast_build.md", markdown(s))):
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
