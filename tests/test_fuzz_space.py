"""The fuzzer's parts without a simulator: the model space it draws, the judge of refusals,
and the shrinker."""
import copy

import numpy as np
import pytest

from sim.fuzz.limits import documented_limits, matching_limit, parse_limits
from sim.fuzz.run import recipe_for
from sim.fuzz.shrink import candidates, describe, is_valid, shrink
from sim.fuzz.space import NEURON_KINDS, PLANS, checkpoint, draw_recipe, stage_shapes
from snn.checkpoint import validate_checkpoint
from fuzz_cases import MODELS, SEED


@pytest.mark.parametrize("profile", ["ci", "full"])
def test_every_drawn_recipe_is_a_valid_checkpoint(profile):
    """400 draws: each checkpoint passes the checkpoint validator, and its shapes are what the recipe says."""
    rng = np.random.default_rng(7)
    for _ in range(400):
        recipe = draw_recipe(rng, profile)
        ckpt = validate_checkpoint(checkpoint(recipe))
        assert len(stage_shapes(recipe)) == len(recipe["stages"])
        assert ckpt["arch"]["input_shape"] == recipe["input_shape"]


def test_the_ci_models_cover_the_documented_space():
    """The 100 models CI builds draw every neuron kind, plan, stage type and option the issue lists."""
    recipes = [recipe_for(SEED, i) for i in range(MODELS)]
    stages = [s for r in recipes for s in r["stages"]]
    kinds = {s["neuron"].get("neuron", s["neuron"]["type"]) for s in stages}
    assert kinds == set(NEURON_KINDS)
    assert {r["build"]["plan"] for r in recipes} == set(PLANS)
    assert {s["op"] for s in stages} == {"conv", "linear", "residual"}
    convs = [s for s in stages if s["op"] == "conv"]
    assert {s["kernel"] for s in convs} >= {1, 2, 3, 4, 5}
    assert {s["stride"] for s in convs} == {1, 2, 3}
    assert any(s.get("pool") for s in convs) and any(s["bn"] for s in convs)
    residual = [s for s in stages if s["op"] == "residual"]
    assert {s["projection"] for s in residual} == {True, False}
    lifs = [s["neuron"] for s in stages if s["neuron"]["type"] == "lif"]
    assert any(n["mpbn"] for n in lifs) and any(n["amplitude"] for n in lifs)
    assert {r["timesteps"] for r in recipes} >= {1, 2, 3, 4}
    assert {r["weights"] for r in recipes} == {"normal", "extreme"}
    assert {r["firing"] for r in recipes} == {"normal", "rare", "dense"}
    assert any(r["input_shape"][1] != r["input_shape"][2] for r in recipes)
    assert {r["input_shape"][0] for r in recipes} == {1, 2, 3}
    assert any(r["build"]["backpressure"] for r in recipes) and any(r["build"]["lanes"] == "random" for r in recipes)


def test_the_full_profile_reaches_the_issue_s_extremes():
    rng = np.random.default_rng(3)
    recipes = [draw_recipe(rng, "full") for _ in range(600)]
    sides = [max(r["input_shape"][1:]) for r in recipes]
    channels = [s.get("channels", 0) for r in recipes for s in r["stages"]]
    assert min(sides) == 1 and max(sides) >= 28
    assert max(channels) >= 48
    assert max(r["timesteps"] for r in recipes) == 8
    assert max(len(r["stages"]) for r in recipes) == 5
    assert max(s["kernel"] for r in recipes for s in r["stages"] if s["op"] == "conv") == 7


def test_the_limits_table_is_read_from_the_docs():
    limits = documented_limits()
    assert len(limits) >= 10 and len({limit.id for limit in limits}) == len(limits)
    assert all(limit.scope in ("layer", "model") for limit in limits)


def test_a_refusal_counts_only_when_documented_and_naming_a_layer():
    table = parse_limits("| too-wide | a layer too wide | layer | `wider than \\d+` |\n"
                         "| no-fit | the whole model | model | `does not fit` |\n")
    assert matching_limit("layer 'conv1': wider than 32", ["conv1"], table).id == "too-wide"
    assert matching_limit("layer 'conv9': wider than 32", ["conv1"], table) is None      # not a layer of the model
    assert matching_limit("wider than 32", ["conv1"], table) is None                      # names no layer
    assert matching_limit("model does not fit the xc7z020", [], table).id == "no-fit"
    assert matching_limit("layer 'conv1': something else", ["conv1"], table) is None


def test_shrink_finds_the_smallest_recipe_that_still_fails():
    """A made-up bug, 'any conv with kernel >= 3 and at least 2 channels': the shrinker must
    drop every other stage and reach kernel 3, 2 channels, T = 1, a 3-pixel-wide map."""
    recipe = recipe_for(SEED, 0)
    recipe["input_shape"] = [3, 9, 9]
    recipe["timesteps"] = 4
    recipe["stages"] = [
        {"op": "linear", "features": 6, "bn": True, "neuron": {"type": "if_subtract", "signed": True}},
    ]
    recipe["stages"].insert(0, {"op": "conv", "channels": 6, "kernel": 5, "stride": 1, "padding": 2, "bias": True,
                                "bn": True, "neuron": {"type": "if_subtract", "signed": True}})
    assert is_valid(recipe)

    def fails(r):
        return any(s["op"] == "conv" and s["kernel"] >= 3 and s["channels"] >= 2 for s in r["stages"])

    small, runs = shrink(recipe, fails, budget=200)
    assert fails(small) and runs <= 200
    (stage,) = small["stages"]
    assert (stage["kernel"], stage["channels"]) == (3, 2) and stage["padding"] <= 1
    assert small["timesteps"] == 1 and small["input_shape"][0] == 1 and min(small["input_shape"][1:]) >= 1
    assert "conv3" in describe(small)


def test_shrink_candidates_never_edit_the_original():
    recipe = recipe_for(SEED, 5)
    recipe["stages"] = [{"op": "linear", "features": 6, "bn": True,
                         "neuron": {"type": "lif", "neuron": "ternary", "tau_shift": 2, "v_threshold": 0.5,
                                    "amplitude": True, "mpbn": True}}] * 2
    before = copy.deepcopy(recipe)
    assert sum(1 for c in candidates(recipe) if c is not None) > 10
    assert recipe == before
