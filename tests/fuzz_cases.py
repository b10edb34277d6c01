"""The fuzzed models CI builds and simulates on every run (tests/test_fuzz_models*.py).

Fixed: the run seed and the indices, so CI never depends on a random seed; the models
are drawn across the whole documented space (sim.fuzz.space, profile "ci").
"""
from pathlib import Path

from sim.fuzz.case import run_case
from sim.fuzz.run import recipe_for
from sim.fuzz.shrink import describe

SEED = 2026
MODELS = 100


def check_case(index: int, tmp_path: Path) -> None:
    recipe = recipe_for(SEED, index)
    outcome = run_case(recipe, tmp_path / "case")
    assert outcome.verdict in ("exact", "refused"), (
        f"fuzz case {index} of seed {SEED} ({describe(recipe)}): {outcome.verdict} at {outcome.stage}: "
        f"{outcome.message} (replay: python -m sim fuzz --seed {SEED} --start {index} --nets 1)")
