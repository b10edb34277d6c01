"""The slow tier's random search: every property test once more under the "random" hypothesis
profile (tests/conftest.py), with a fresh seed, so that new counterexamples are found there
and never make the default (derandomized) tier flake."""
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROPERTY_TESTS = ["tests/test_gen_folds.py::test_folds_and_quantisation_property",
                  "tests/test_gen_bounds.py::test_random_networks_stay_within_bounds",
                  "tests/test_gen_golden.py::test_golden_equals_float64_fake_quantised_model",
                  "tests/test_msat_golden.py::test_golden_equals_float64_reference_for_converted_neurons"]


def test_property_tests_exist():
    """A renamed property test must be renamed here too, or the slow tier would search nothing."""
    for node in PROPERTY_TESTS:
        path, name = node.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(), node


@pytest.mark.slow
def test_property_tests_pass_under_a_random_search():
    seed = random.SystemRandom().randrange(2 ** 32)
    out = subprocess.run([sys.executable, "-m", "pytest", *PROPERTY_TESTS, "-q", "-p", "no:randomly",
                          "-m", "", "--hypothesis-profile=random", f"--hypothesis-seed={seed}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, f"--hypothesis-seed={seed} failed:\n{out.stdout[-4000:]}"
