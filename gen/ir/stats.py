"""Per-layer statistics of an integer network: structure, widths, and measured activity.

`network_stats(net, result)` combines the IR, its bounds and a recorded golden run into one
JSON-ready dict (what `python -m gen inspect` prints). Energy estimates use the figures the
Ternary Spike paper uses (after Hu, Tang and Pan 2021): 12.5 pJ per FLOP (a multiply-
accumulate) and 77 fJ per SOP (a synaptic accumulate). The equivalent ANN performs every
synapse as a MAC once per image; the SNN performs the encoding layer's MACs once per image
(its current is the same at every step) and one SOP per synapse of every event.
"""
from __future__ import annotations

import numpy as np

from gen.ir.bounds import network_bounds
from gen.ir.golden import GoldenResult, fanout
from gen.ir import Network

PJ_PER_FLOP = 12.5
PJ_PER_SOP = 0.077


def synapse_count(net: Network, layer) -> int:
    """Synapses into a layer, border clipping counted (the MACs of one dense evaluation)."""
    total = 0
    for p in layer.projections:
        total += int(fanout(p.op, p.weight, net.source_shape(p.source), layer.shape).sum())
    return total


def _consumers(net: Network, name: str):
    for layer in net.layers:
        for p in layer.projections:
            if p.source == name:
                yield layer, p


def layer_structure(net: Network, layer) -> dict:
    size = layer.size
    synapses = synapse_count(net, layer)
    fan_out = sum(int(fanout(p.op, p.weight, net.source_shape(p.source), consumer.shape).sum())
                  for consumer, p in _consumers(net, layer.name))
    weights = np.concatenate([p.weight.reshape(-1) for p in layer.projections])
    info = {
        "name": layer.name, "kind": layer.kind, "neuron": layer.neuron, "shape": list(layer.shape),
        "neurons": size,
        "projections": [{"source": p.source, "op": p.op.to_json(), "weight_shape": list(p.weight.shape)}
                        for p in layer.projections],
        "fan_in": round(synapses / size, 2),            # mean synapses into a neuron (clipping counted)
        "fan_out": round(fan_out / size, 2) if layer.kind != "readout" else 0,
        "weight_min": int(weights.min()), "weight_max": int(weights.max()),
        "bias_min": int(layer.bias.min()), "bias_max": int(layer.bias.max()),
        "scale_exp_min": int(layer.scale_exp.min()), "scale_exp_max": int(layer.scale_exp.max()),
        "leak_shift": layer.leak_shift if layer.kind != "readout" else None,
        "synapses": synapses,
    }
    if layer.kind != "readout":
        info["theta_pos"] = [int(layer.theta_pos.min()), int(layer.theta_pos.max())]
        info["theta_neg"] = None if layer.theta_neg is None else [int(layer.theta_neg.min()), int(layer.theta_neg.max())]
    return info


def network_stats(net: Network, result: GoldenResult | None = None, labels: np.ndarray | None = None) -> dict:
    """Structure, bounds, widths and (with a recorded golden run) events, SOPs and energy per image."""
    bounds = network_bounds(net)
    layers = []
    for layer in net.layers:
        info = layer_structure(net, layer)
        b = bounds[layer.name]
        info["bounds"] = {"current": list(b.current), "accumulator": list(b.accumulator),
                          "membrane": [list(m) for m in b.membrane] if b.membrane else None,
                          "logit": list(b.logit) if b.logit else None}
        info["widths"] = {"current": b.current_bits, "accumulator": b.accumulator_bits,
                          "membrane": b.membrane_bits, "logit": b.logit_bits}
        info["ann_flops"] = info["synapses"]
        if result is not None and result.sops:
            n = result.logits.shape[0]
            info["sops_per_image"] = float(result.sops[layer.name].sum() / n) if layer.kind != "encoding" else 0.0
            info["snn_flops_per_image"] = info["synapses"] if layer.kind == "encoding" else 0
            if layer.name in result.events:
                events = result.events[layer.name]
                info["events_per_image"] = float(events.sum() / n)
                info["events_per_step"] = [float(v) for v in events.mean(0)]
                info["firing_rate"] = float(events.sum() / (n * net.timesteps * layer.size))
                spikes = result.spikes[layer.name].reshape(n, net.timesteps, -1)
                info["positive_rate"] = float((spikes > 0).mean())
                info["negative_rate"] = float((spikes < 0).mean())
        layers.append(info)
    stats = {"name": net.name, "input_shape": list(net.input_shape), "timesteps": net.timesteps,
             "wbits": net.wbits, "classes": net.num_classes, "layers": layers}
    ann_flops = sum(l["ann_flops"] for l in layers)
    stats["totals"] = {"ann_flops": ann_flops, "ann_energy_uj": ann_flops * PJ_PER_FLOP * 1e-6}
    if result is not None and result.sops:
        sops = sum(l["sops_per_image"] for l in layers)
        flops = sum(l["snn_flops_per_image"] for l in layers)
        energy = flops * PJ_PER_FLOP + sops * PJ_PER_SOP
        stats["totals"].update({
            "images": int(result.logits.shape[0]), "snn_sops_per_image": sops, "snn_flops_per_image": flops,
            "snn_energy_uj": energy * 1e-6, "energy_ratio_snn_to_ann": energy / (ann_flops * PJ_PER_FLOP),
            "events_per_image": sum(l.get("events_per_image", 0.0) for l in layers)})
        if labels is not None:
            stats["totals"]["integer_accuracy"] = float((result.classes == labels).mean())
    stats["energy_model"] = {"pj_per_flop": PJ_PER_FLOP, "pj_per_sop": PJ_PER_SOP,
                             "source": "Ternary Spike (AAAI 2024), after Hu, Tang and Pan 2021"}
    return stats


