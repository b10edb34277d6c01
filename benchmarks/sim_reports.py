"""Merging the reports of consecutive `python -m sim run` chunks into one record.

A long held-out run is simulated in chunks, each its own simulator run from reset; this is
pure JSON arithmetic so that merging needs neither torch nor a simulator.
"""
from __future__ import annotations


def merge(chunks: list[dict]) -> dict:
    """One report for consecutive chunks (each a sim_report): sums, image-weighted means; the
    latency is the first chunk's (an empty pipeline), the interval averages every chunk's
    back-to-back intervals."""
    first = chunks[0]
    images = sum(c["images"] for c in chunks)
    intervals = [(c["cycles_per_image"], c["results"] - 1) for c in chunks if c["cycles_per_image"]]
    steady = sum(v * n for v, n in intervals) / sum(n for _, n in intervals)
    layers = []
    for i, layer in enumerate(first["layers"]):
        sops = sum(c["layers"][i]["sops_per_image"] * c["images"] for c in chunks) / images
        events = None if layer["events_per_image"] is None else \
            sum(c["layers"][i]["events_per_image"] * c["images"] for c in chunks) / images
        layers.append(dict(layer, sops_per_image=round(sops, 1),
                           events_per_image=None if events is None else round(events, 1),
                           lane_utilisation=round(sops / layer["lanes"] / steady, 4)
                           if layer.get("engine_family", "event") == "event" else None))
    busy = [c.get("busy_cycles") for c in chunks]
    # Per-result cycles and the counters' registers belong to one simulator run: not merged.
    first = {k: v for k, v in first.items() if k not in ("result_cycles", "registers")}
    return dict(first, images=images, results=sum(c["results"] for c in chunks),
                busy_cycles=None if None in busy else sum(busy),
                mismatches=sum(c["mismatches"] for c in chunks),
                first_mismatches=[m for c in chunks for m in c["first_mismatches"]][:10],
                bit_exact=all(c["bit_exact"] for c in chunks),
                accuracy=sum(c["accuracy"] * c["images"] for c in chunks) / images,
                images_source=f"held-out MNIST images {8000 + first['start']}..{8000 + first['start'] + images - 1}",
                cycles_per_image=round(steady, 2), images_per_second_at_100mhz=round(1e8 / steady, 1),
                sops_per_image=round(sum(c["sops_per_image"] * c["images"] for c in chunks) / images, 1),
                layers=layers, chunks=len(chunks))
