"""What a build hands on: manifest.json (for the host driver and the testbenches) and the
report (report.json, report.md) for people.

The manifest is the only thing the host reads: shapes, T, classes, the packing of input
and output beats, the register map (from gen.backend.regmap), the model ID, and the file names.
The testbenches also read the hardware graph from it: each layer's input and output
streams (the engine's port names, from gen.engines) and the edges between the layers
(gen.plan.Edge: source, target, the target's input stream, its queue depth).
"""
from __future__ import annotations

import numpy as np

from hw.axi import AXIS_WIDTH, PIXELS_PER_BEAT, beats_per_image, result_beats, result_words

MANIFEST_FORMAT = "tern-build"
MANIFEST_VERSION = 1


def input_packing(input_shape) -> dict:
    pixels = int(np.prod(input_shape))
    beats = beats_per_image(pixels)
    return {
        "shape": list(input_shape), "dtype": "uint8", "order": "C,H,W row-major",
        "pixels_per_image": pixels, "beat_bits": AXIS_WIDTH, "pixels_per_beat": PIXELS_PER_BEAT,
        "beats_per_image": beats, "bytes_per_image": beats * AXIS_WIDTH // 8,
        "packing": "pixel i of a beat in bits [8i+7:8i] (little-endian bytes); the last beat is "
                   "zero-padded and carries TLAST",
    }


def output_packing(num_classes: int, logit_width: int) -> dict:
    beats = result_beats(num_classes)
    words = ["logit[%d]" % i for i in range(num_classes)] + ["class"]
    words += ["pad"] * (2 * beats - len(words))
    return {
        "num_classes": num_classes, "word": "int32 little-endian", "words": words,
        "words_per_image": result_words(num_classes), "beat_bits": AXIS_WIDTH, "beats_per_image": beats,
        "bytes_per_image": beats * AXIS_WIDTH // 8, "logit_bits": logit_width,
        "packing": "the K logits as little-endian int32 (sign-extended), then the class as int32, "
                   "zero-padded to whole 64-bit beats; TLAST on the image's last beat",
    }


def make_manifest(*, net, model_path: str, model_id: int, board, plan, regmap, emitted, stem: str,
                  rtl_files: list[str], tcl: str) -> dict:
    layers = []
    for lp, mod, path in zip(plan.layers, emitted.layers, rtl_files):
        layers.append({"name": lp.name, "kind": lp.kind, "module": mod.module, "file": path,
                       "shape": list(net.layer(lp.name).shape), "lanes": lp.lanes,
                       "event_addr_bits": lp.out_addr_width or None, "queue_depth": lp.queue_depth or None,
                       "neuron": lp.neuron, "output_stream": mod.output_stream,
                       "sends_events": bool(lp.out_addr_width),
                       "engine_family": lp.family, "input_format": mod.in_format,
                       "output_format": mod.out_format if lp is not plan.layers[-1] else "result",
                       "inputs": [{"source": e.source, "stream": e.stream, "queue_depth": e.queue_depth or None}
                                  for e in lp.inputs]})
    return {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
        "model": {"name": net.name, "source": model_path, "model_id": model_id,
                  "model_id_hex": f"0x{model_id:08x}"},
        "board": board.to_json(),
        "timesteps": net.timesteps, "classes": net.num_classes,
        "input": input_packing(net.input_shape),
        "output": output_packing(net.num_classes, emitted.logit_width),
        "registers": regmap.to_json(),
        "top": {"module": emitted.top_module, "file": rtl_files[-1],
                "clock": "aclk", "reset": "aresetn (active low, synchronous to aclk)",
                "interfaces": {"s_axis": "pixels in (AXI4-Stream slave, 64-bit, TLAST)",
                               "m_axis": "results out (AXI4-Stream master, 64-bit, TKEEP all ones, TLAST)",
                               "s_axi": f"registers (AXI4-Lite slave, {regmap.addr_width}-bit address, 32-bit data)"}},
        "layers": layers,
        "edges": [{"from": e.source, "to": e.target, "stream": e.stream, "projection": e.projection,
                   "queue_depth": e.queue_depth or None, "event_addr_bits": e.addr_width or None}
                  for e in plan.edges],
        "files": {"rtl": rtl_files, "tcl": tcl, "bitstream": f"{stem}.bit", "hwh": f"{stem}.hwh",
                  "ir": ["steps/03_ir/model.json", "steps/03_ir/model.npz"]},
    }


def make_report(*, net, board, plan, utilisation, lint: dict, steps: list, model_id: int) -> dict:
    cap = board.capacity
    used = utilisation.to_json() if utilisation is not None else None
    resources = None
    if utilisation is not None:
        resources = {key: {"used": used[key], "available": getattr(cap, key),
                           "percent": round(100 * used[key] / getattr(cap, key), 1)}
                     for key in ("luts", "ffs", "bram36", "dsps")}
    return {
        "model": net.name, "model_id": f"0x{model_id:08x}", "board": board.name, "part": board.part,
        "clock_mhz": board.clock_mhz, "timesteps": net.timesteps,
        "fits": utilisation.fits(cap) if utilisation is not None else None,
        "resources": resources, "synthesis_seconds": used["seconds"] if used else None,
        "resources_per_module": used["per_module"] if used else None,
        "synthesis_cached": list(used["cached"]) if used else None,
        "estimate": plan.estimate,
        "estimate_shares": plan.estimate_shares,
        "converters": [{"from": c.source, "to": c.target, "converter": c.converter, "shape": list(c.shape),
                        "estimate": c.estimate} for c in plan.converters],
        "cycles_per_image": round(plan.cycles_per_image, 1),
        "images_per_second": round(plan.images_per_second, 1),
        "latency_cycles": round(plan.latency_cycles, 1),
        "bottleneck": plan.bottleneck.name,
        "traffic_measured": plan.layers[0].traffic.measured,
        "edges": [{"from": e.source, "to": e.target, "queue_depth": e.queue_depth or None} for e in plan.edges],
        "layers": [{"name": lp.name, "kind": lp.kind, "lanes": lp.lanes, "lanes_source": lp.lanes_source,
                    "engine": lp.family, "engine_source": lp.family_source, "engine_reason": lp.family_reason,
                    "sources": [e.source for e in lp.inputs],
                    "valid_lanes": list(lp.valid_lanes), "widths": lp.widths, "queue_depth": lp.queue_depth,
                    "events_out_per_image": round(lp.traffic.events_out, 1),
                    "sops_per_image": round(lp.traffic.sops, 1), "cycles_per_image": round(lp.cycles, 1)}
                   for lp in plan.layers],
        "lint": lint,
        "steps": steps,
        "notes": list(plan.notes),
    }


def _resources(e: dict) -> str:
    return f"{e['luts']:,} LUT, {e['ffs']:,} FF, {e['bram36']:g} BRAM36, {e['dsps']} DSP"


def estimate_lines(report: dict) -> list[str]:
    """The plan's estimate and, beside the layers', the top's share and the converters' (an
    EventsToMap or MapToEvents on each edge between a dense and an event engine)."""
    shares = report.get("estimate_shares") or {}
    if not shares:
        return []
    text = f"Estimated by the plan: {_resources(report['estimate'])}; of which the top {_resources(shares['top'])}"
    converters = report.get("converters") or []
    if converters:
        edges = ", ".join(f"{c['from']} → {c['to']} ({c['converter']} {'×'.join(map(str, c['shape']))})"
                          for c in converters)
        text += f", and the dense/event converters {_resources(shares['converters'])} ({edges})"
    return [text + ".", ""]


def report_markdown(report: dict) -> str:
    lines = [f"# Tern build: {report['model']} on {report['board']} ({report['part']})", ""]
    if report["resources"]:
        verdict = "fits" if report["fits"] else "does NOT fit"
        cached = report.get("synthesis_cached") or []
        lines += [f"The design {verdict} the {report['part']} (yosys synth_xilinx per module, "
                  f"{report['synthesis_seconds']} s" + (f"; from the cache: {', '.join(cached)}" if cached else "")
                  + ").", "",
                  "| resource | used | available | % |", "|---|---:|---:|---:|"]
        for key, label in (("luts", "LUT"), ("ffs", "FF"), ("bram36", "BRAM36"), ("dsps", "DSP")):
            r = report["resources"][key]
            lines.append(f"| {label} | {r['used']:,g} | {r['available']:,} | {r['percent']} |")
        lines.append("")
    lines += [f"Estimated {report['cycles_per_image']:,} cycles per image (bottleneck: "
              f"`{report['bottleneck']}`), {report['images_per_second']:,.0f} images/s at "
              f"{report['clock_mhz']:g} MHz; latency about {report['latency_cycles']:,} cycles. "
              f"T = {report['timesteps']}, model ID {report['model_id']}.", "",
              *estimate_lines(report),
              "| layer | kind | engine | lanes | valid lanes | widths I/acc/U/logit | queue | events/img | SOPs/img | cycles/img |",
              "|---|---|---|---:|---|---|---:|---:|---:|---:|"]
    for l in report["layers"]:
        w = l["widths"]
        bits = "/".join("-" if w[k] is None else str(w[k])
                        for k in ("current_bits", "accumulator_bits", "membrane_bits", "logit_bits"))
        lines.append(f"| {l['name']} | {l['kind']} | {l.get('engine', 'event')} ({l.get('engine_source', 'default')}) | "
                     f"{l['lanes']} ({l['lanes_source']}) | "
                     f"{', '.join(map(str, l['valid_lanes']))} | {bits} | {l['queue_depth'] or '-'} | "
                     f"{l['events_out_per_image']:,} | {l['sops_per_image']:,} | {l['cycles_per_image']:,} |")
    if any(len(l.get("sources", ())) > 1 for l in report["layers"]):
        lines += ["", "Edges (one event queue each, at the consumer; a layer read by several is forked): "
                  + ", ".join(f"{e['from']} → {e['to']} ({e['queue_depth'] or '-'})" for e in report["edges"]) + "."]
    reasons = [l for l in report["layers"] if l.get("engine_reason")]
    if reasons:
        lines += ["", "Engine per layer (event: event-driven, its cycles follow the measured firing; dense: "
                  "dense streaming, its cycles fixed by the geometry; the cheapest that reaches the plan's rate):", ""]
        lines += [f"- `{l['name']}`: {l['engine_reason']}" for l in reasons]
    lines += ["", "Steps:", ""]
    for s in report["steps"]:
        lines.append(f"- `{s['name']}`: {s['seconds']:.1f} s")
    for note in report["notes"]:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"
