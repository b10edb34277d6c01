"""Multi-projection layers for the testbenches: hw projections from JSON-able specs, their
test weights and thresholds, and the SPEC §4 reference (gen.ir.golden) summed over the
projections of a layer."""
from __future__ import annotations

import numpy as np

from gen.ir import golden
from gen.ir import Identity
from hw.projection import IdentityGeometry, Projection
from sim.tb.reference import current_bound, ir_op, layer_widths, make_geometry, make_weights, project


def make_any_geometry(spec: dict):
    """make_geometry, plus {"kind": "identity", "channels", "height", "width"}."""
    if spec["kind"] == "identity":
        return IdentityGeometry(**{k: v for k, v in spec.items() if k != "kind"})
    return make_geometry(spec)


def project_any(geometry, weights, spikes) -> np.ndarray:
    """Σ W ⋆ s of one projection by gen.ir.golden, flat in [O,H,W] order (identity included)."""
    if isinstance(geometry, IdentityGeometry):
        g = geometry
        x = np.asarray(spikes, dtype=np.int64).reshape(1, g.channels, g.height, g.width)
        return golden.project(Identity(), np.asarray(weights, dtype=np.int64), x).reshape(-1)
    assert ir_op(geometry) is not None
    return project(geometry, weights, spikes)


def combined_rows(projections) -> np.ndarray:
    """Every projection's weights into each output channel side by side: [O, Σ fan-in], so
    that current_bound gives the bound of the summed current."""
    rows = [np.asarray(p.weights, dtype=np.int64).reshape(p.geometry.out_channels, -1) for p in projections]
    return np.concatenate(rows, axis=1)


def layer_projections(specs, p: dict, seed_offset: int = 0) -> list[Projection]:
    """Projections from [{"source", "geometry"}] with test weights of p's style and width."""
    out = []
    for i, spec in enumerate(specs):
        geometry = make_any_geometry(spec["geometry"])
        weights = make_weights(geometry.weight_shape, p["weight_width"], p["weight_style"],
                               p["weight_seed"] + seed_offset + i)
        out.append(Projection(spec["source"], geometry, weights))
    return out


def neuron_parameters(projections, kind: str, seed: int):
    """Bias and thresholds scaled to the summed current, so that neurons fire sometimes."""
    rows = combined_rows(projections)
    rng = np.random.default_rng(seed)
    scale = max(1, current_bound(rows, 1) // 6)
    channels = rows.shape[0]
    bias = rng.integers(-scale // 4, scale // 4 + 1, size=channels)
    theta_pos = rng.integers(1, scale + 1, size=channels)
    theta_neg = -rng.integers(1, scale + 1, size=channels) if kind != "binary" else -theta_pos
    return bias, theta_pos, theta_neg


def multi_layer_args(specs, p: dict, seed_offset: int = 0) -> dict:
    """SpikingLayer keyword arguments of a test layer with several projections."""
    projections = layer_projections(specs, p, seed_offset)
    bias, theta_pos, theta_neg = neuron_parameters(projections, p["kind"], p["weight_seed"] + seed_offset + 100)
    cw, mw = layer_widths(combined_rows(projections), bias, theta_pos, theta_neg, p["leak_shift"], p["steps"])
    return dict(projections=projections, bias=bias, theta_pos=theta_pos, theta_neg=theta_neg,
                leak_shift=p["leak_shift"], steps=p["steps"], kind=p["kind"], lanes=p["lanes"],
                weight_width=p["weight_width"], current_width=cw, membrane_width=mw)


def summed_currents(projections, maps) -> np.ndarray:
    """Σ over projections of W ⋆ s (no bias), maps[i] the spike map of projection i."""
    return sum(project_any(pr.geometry, pr.weights, x) for pr, x in zip(projections, maps))
