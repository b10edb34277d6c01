"""Every model the fuzzer ever shrank from a bug (tests/corpus/), replayed on every CI run:
each must now build with its plan and simulate bit-exact, or be refused with a documented
limit (docs/limits.md). The .pt beside each .json is the checkpoint itself, so the replay
does not depend on the recipe generator staying the same."""
import json
from pathlib import Path

import pytest

from sim.fuzz.case import run_case

CORPUS = Path(__file__).parent / "corpus"
ENTRIES = sorted(CORPUS.glob("*.json"))


def test_the_corpus_is_whole():
    """Each entry has its checkpoint, its recipe and what it found, and names a real bug verdict."""
    assert ENTRIES, "tests/corpus holds no entries"
    for entry in ENTRIES:
        data = json.loads(entry.read_text())
        assert entry.with_suffix(".pt").is_file(), f"{entry.name} has no checkpoint beside it"
        assert {"recipe", "found", "model"} <= set(data)
        assert entry.name.startswith(data["found"]["verdict"] + "-")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.stem for e in ENTRIES])
def test_corpus_model_builds_exact_or_is_refused_as_documented(entry, tmp_path):
    data = json.loads(entry.read_text())
    outcome = run_case(data["recipe"], tmp_path / "case", model=entry.with_suffix(".pt"))
    assert outcome.verdict in ("exact", "refused"), (
        f"{entry.name} ({data['model']}), found as {data['found']['verdict']}: now {outcome.verdict} "
        f"at {outcome.stage}: {outcome.message}")
