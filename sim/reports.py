"""Merging the reports of consecutive `python -m sim run` chunks into one record.

A long run is simulated in chunks, each its own simulator run from reset (`sim run --jobs`,
`--cluster`, benchmarks/mnist_sim.py); this is pure JSON arithmetic so that merging needs
neither torch nor a simulator.
"""
from __future__ import annotations

import re

BUSY = ("BUSY_CYCLES_LO", "BUSY_CYCLES_HI")
COUNTERS = ("IMAGES_IN", "IMAGES_OUT")


def merge(chunks: list[dict], counters: tuple[str, ...] | None = None) -> dict:
    """One report for consecutive chunks (each a sim_report): sums, image-weighted means; the
    latency is the first chunk's (an empty pipeline), the interval averages every chunk's
    back-to-back intervals. With `counters` (the event-counter registers' names) the chunks'
    registers are merged too (merge_registers); without, they are left out, as chunks run
    apart may not be one run's."""
    first = chunks[0]
    images = sum(c["images"] for c in chunks)
    intervals = [(c["cycles_per_image"], c["results"] - 1) for c in chunks if c["cycles_per_image"]]
    steady = sum(v * n for v, n in intervals) / sum(n for _, n in intervals) if intervals else None
    layers = []
    for i, layer in enumerate(first["layers"]):
        sops = sum(c["layers"][i]["sops_per_image"] * c["images"] for c in chunks) / images
        events = None if layer["events_per_image"] is None else \
            sum(c["layers"][i]["events_per_image"] * c["images"] for c in chunks) / images
        layers.append(dict(layer, sops_per_image=round(sops, 1),
                           events_per_image=None if events is None else round(events, 1),
                           lane_utilisation=round(sops / layer["lanes"] / steady, 4)
                           if steady and layer.get("engine_family", "event") == "event" else None))
    busy = [c.get("busy_cycles") for c in chunks]
    accuracy = [c.get("accuracy") for c in chunks]
    # Per-result cycles belong to one simulator run: not merged.
    merged = dict({k: v for k, v in first.items() if k != "result_cycles"},
                  images=images, results=sum(c["results"] for c in chunks),
                  busy_cycles=None if None in busy else sum(busy),
                  mismatches=sum(c["mismatches"] for c in chunks),
                  first_mismatches=[m for c in chunks for m in c["first_mismatches"]][:10],
                  bit_exact=all(c["bit_exact"] for c in chunks),
                  accuracy=None if None in accuracy else sum(a * c["images"] for a, c in zip(accuracy, chunks)) / images,
                  images_source=merged_source(first["images_source"], first["start"], images),
                  cycles_per_image=None if steady is None else round(steady, 2),
                  images_per_second_at_100mhz=None if not steady else round(1e8 / steady, 1),
                  sops_per_image=round(sum(c["sops_per_image"] * c["images"] for c in chunks) / images, 1),
                  layers=layers, chunks=len(chunks))
    if counters is not None and all(isinstance(c.get("registers"), dict) for c in chunks):
        merged["registers"] = merge_registers([c["registers"] for c in chunks], tuple(counters))
    else:
        merged.pop("registers", None)
    return merged


def merge_registers(chunks: list[dict], counters: tuple[str, ...] = ()) -> dict:
    """The registers as one run would count them: the image and event counters (`counters`,
    32 bits, wrapping) and BUSY_CYCLES (64 bits) summed over the chunks, ERRORS or-ed, the
    rest (identity, STATUS, SCRATCH) the first chunk's."""
    out = dict(chunks[0])
    for name in (*COUNTERS, *counters):
        if all(name in c for c in chunks):
            out[name] = sum(c[name] for c in chunks) & 0xFFFFFFFF
    if all(b in c for c in chunks for b in BUSY):
        total = sum((c[BUSY[1]] << 32) | c[BUSY[0]] for c in chunks)
        out[BUSY[0]], out[BUSY[1]] = total & 0xFFFFFFFF, (total >> 32) & 0xFFFFFFFF
    if all("ERRORS" in c for c in chunks):
        out["ERRORS"] = 0
        for c in chunks:
            out["ERRORS"] |= c["ERRORS"]
    return out


def merged_source(first_source: str, start: int, images: int) -> str:
    """The first chunk's image description ("held-out MNIST images 8000..8024", "random images
    0..2 (seed 0)") over all the images from `start` (held-out image k is MNIST's 8000+k)."""
    match = re.match(r"(.*?)(\d+)\.\.(\d+)(.*)", first_source)
    if match is None:
        return first_source
    low = (8000 if first_source.startswith("held-out MNIST") else 0) + start
    return f"{match.group(1)}{low}..{low + images - 1}{match.group(4)}"
