"""Fuzzed models 0–49 of the CI seed: each builds with its plan and simulates bit-exact,
or is refused with a documented limit (tests/fuzz_cases.py; 50–99 are in test_fuzz_models_more.py,
a second file so that pytest-xdist's two workers share them)."""
import pytest

from fuzz_cases import MODELS, check_case


@pytest.mark.parametrize("index", range(MODELS // 2))
def test_fuzzed_model(index, tmp_path):
    check_case(index, tmp_path)
