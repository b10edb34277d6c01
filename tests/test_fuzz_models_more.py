"""Fuzzed models 50–99 of the CI seed (see test_fuzz_models.py)."""
import pytest

from fuzz_cases import MODELS, SEED, check_case


@pytest.mark.parametrize("index", range(MODELS // 2, MODELS))
def test_fuzzed_model(index, tmp_path):
    check_case(index, tmp_path)


@pytest.mark.slow   # 2,000 models of the full profile: hours on 2 cores (docs/fuzz.md)
def test_two_thousand_models_of_the_whole_space_have_no_bug(tmp_path):
    import os

    from sim.fuzz.run import fuzz

    report = fuzz(2000, SEED + 1, jobs=os.cpu_count() or 1, out=tmp_path / "fuzz", profile="full",
                  corpus=tmp_path / "corpus")
    assert not report["bugs"], "; ".join(f"case {b['index']} {b['verdict']}: {b['message'][:200]}"
                                         for b in report["bugs"][:5])
