"""Shrinking a failing recipe to a small one that fails the same way.

    small = shrink(recipe, still_fails, budget=40)

`still_fails(recipe) -> bool` runs a candidate (build and simulate) and says whether it shows
the same bug. Candidates are single edits that make a model smaller or plainer: drop a
stage, fewer channels, a smaller map, T = 1, plain weights, no BatchNorm, ... Greedy: the
first edit that still fails is kept and the search starts over from it, until no edit does
or the budget of runs is spent. An edit that makes the shapes impossible is skipped without
a run.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

from sim.fuzz.space import stage_shapes


def _set(recipe: dict, path: tuple, value) -> dict | None:
    """A copy of `recipe` with the field at `path` set to `value`, or None if it already is."""
    node = recipe
    for key in path[:-1]:
        node = node[key]
    if node.get(path[-1]) == value:
        return None
    changed = copy.deepcopy(recipe)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


def _smaller_ints(value: int, floor: int) -> list[int]:
    """The floor, half, and one less (in that order: big steps first)."""
    return sorted({v for v in (floor, value // 2, value - 1) if floor <= v < value})


def candidates(recipe: dict) -> Iterator[dict]:
    """Every single-edit simplification of `recipe`, boldest first (None where an edit
    changes nothing)."""
    for _, edited in keyed_candidates(recipe):
        yield edited


def keyed_candidates(recipe: dict) -> Iterator[tuple[tuple, dict | None]]:
    """(what the edit is, the edited recipe) for every single-edit simplification."""
    stages = recipe["stages"]
    for i in range(len(stages)):
        if len(stages) > 1:
            edited = copy.deepcopy(recipe)
            del edited["stages"][i]
            yield ("drop", i), edited
    for key, floor in (("timesteps", 1), ("classes", 2)):
        for v in _smaller_ints(recipe[key], floor):
            yield (key, v), _set(recipe, (key,), v)
    for axis in (1, 2, 0):
        for v in _smaller_ints(recipe["input_shape"][axis], 1):
            shape = list(recipe["input_shape"])
            shape[axis] = v
            yield ("input_shape", axis, v), _set(recipe, ("input_shape",), shape)
    for key, plain in (("weights", "normal"), ("firing", "normal"), ("normalization", False), ("wbits", 8),
                       ("readout_bn", False)):
        yield (key, plain), _set(recipe, (key,), plain)
    yield ("lanes",), _set(recipe, ("build", "lanes"), "default")
    yield ("backpressure",), _set(recipe, ("build", "backpressure"), False)
    for i, stage in enumerate(stages):
        for edited in _stage_candidates(recipe, i, stage):
            yield ("stage", i, _difference(recipe["stages"][i], edited["stages"][i] if edited else None)), edited


def _difference(before: dict, after: dict | None) -> str:
    return "" if after is None else repr(sorted((k, repr(v)) for k, v in after.items() if before.get(k) != v))


def _stage_candidates(recipe: dict, i: int, stage: dict) -> Iterator[dict]:
    at = ("stages", i)
    for key in ("channels", "features"):
        if key in stage:
            for v in _smaller_ints(stage[key], 1):
                yield _set(recipe, (*at, key), v)
    if stage["op"] == "conv":
        for v in _smaller_ints(stage["kernel"], 1):
            edited = _set(recipe, (*at, "kernel"), v)
            if edited is not None:
                edited["stages"][i]["padding"] = min(stage["padding"], v // 2)
                yield edited
        yield _set(recipe, (*at, "stride"), 1)
        yield _set(recipe, (*at, "padding"), 0)
        yield _set(recipe, (*at, "pool"), None)
        yield _set(recipe, (*at, "bias"), False)
    if stage["op"] == "residual":
        yield _set(recipe, (*at, "two_convs"), False)
        yield _set(recipe, (*at, "stride"), 1)
    if "bn" in stage:
        yield _set(recipe, (*at, "bn"), False)
    neuron = stage["neuron"]
    if neuron["type"] == "lif":
        for key, plain in (("mpbn", False), ("amplitude", False), ("tau_shift", 0), ("v_threshold", 1.0)):
            yield _set(recipe, (*at, "neuron", key), plain)
    elif neuron["type"] == "msat":
        yield _set(recipe, (*at, "neuron", "ladder_steps"), 1)


def is_valid(recipe: dict) -> bool:
    try:
        stage_shapes(recipe)
    except ValueError:
        return False
    return True


def shrink(recipe: dict, still_fails: Callable[[dict], bool], budget: int = 40,
           progress: Callable[[str], None] | None = None) -> tuple[dict, int]:
    """(the smallest recipe found that still fails, runs spent).

    An edit that lost the failure once is not tried again after later edits: the edits that
    remove a bug are usually the ones that make a model build and simulate in full, the
    costliest runs, and retrying them after every accepted edit would spend the budget."""
    runs = 0
    current = recipe
    rejected: set = set()
    improved = True
    while improved and runs < budget:
        improved = False
        for key, candidate in keyed_candidates(current):
            if candidate is None or key in rejected or not is_valid(candidate):
                continue
            if runs >= budget:
                break
            runs += 1
            if not still_fails(candidate):
                rejected.add(key)
            else:
                current, improved = candidate, True
                if progress is not None:
                    progress(f"shrunk to {describe(current)}")
                break
    return current, runs


def describe(recipe: dict) -> str:
    """One line: input, T, the stages and their neurons, the plan."""
    parts = []
    for stage in recipe["stages"]:
        neuron = stage["neuron"].get("neuron", stage["neuron"]["type"])
        if stage["op"] == "conv":
            parts.append(f"conv{stage['kernel']}s{stage['stride']}p{stage['padding']}×{stage['channels']}"
                         f"{'+pool' if stage.get('pool') else ''} {neuron}")
        elif stage["op"] == "linear":
            parts.append(f"fc×{stage['features']} {neuron}")
        else:
            kind = "proj" if stage["projection"] else "id"
            parts.append(f"res-{kind}s{stage['stride']}×{stage['channels']} {neuron}")
    c, h, w = recipe["input_shape"]
    build = recipe["build"]
    return (f"{c}×{h}×{w} T={recipe['timesteps']} [{', '.join(parts)}] → {recipe['classes']}; "
            f"plan {build['plan']}, lanes {build['lanes']}")
