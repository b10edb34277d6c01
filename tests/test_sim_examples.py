"""Every shipped example (examples/*.pt) builds with the default plan and is bit-exact on
held-out images, through the commands users type (issue 24).

The ternary, ResNet, IF-subtract and MSAT examples have their own files (below, EXAMPLE_TESTS);
the binary example and the fast model's default plan are built here. The ANN examples are the
sources of conversion: `gen build` refuses them in one line that says to convert them.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from sim_cli import run_heldout_bit_exact

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CI_IMAGES = 20
# example -> the test file that builds it with the default plan and simulates it bit-exact
EXAMPLE_TESTS = {
    "mnist_ternary_t2.pt": "test_sim_network.py",
    "mnist_resnet_t2.pt": "test_sim_network_resnet.py",
    "mnist_if_subtract.pt": "test_sim_converted_examples.py",
    "mnist_msat.pt": "test_sim_converted_examples.py",
    "mnist_binary_t2.pt": "test_sim_examples.py",
    "mnist_fast_t1.pt": "test_sim_examples.py",
}
ANNS = ("mnist_relu_ann.pt", "mnist_relu_small.pt")
BUILT_HERE = sorted(name for name, test in EXAMPLE_TESTS.items() if test == "test_sim_examples.py")


def gen_build(model: str, out: Path) -> subprocess.CompletedProcess:
    """`python -m gen build examples/X.pt --board pynq-z2 --no-synth --out OUT` from the repository root."""
    return subprocess.run([sys.executable, "-m", "gen", "build", f"examples/{model}", "--board", "pynq-z2",
                           "--no-synth", "--out", str(out)], capture_output=True, text=True, cwd=REPO)


def test_every_example_is_built_and_simulated_by_a_test():
    shipped = sorted(p.name for p in EXAMPLES.glob("*.pt"))
    assert shipped == sorted([*EXAMPLE_TESTS, *ANNS]), "a new example needs a default-plan build and simulation test"
    for name, test in EXAMPLE_TESTS.items():
        assert name in (REPO / "tests" / test).read_text(), f"{test} does not name {name}"


@pytest.fixture(scope="module", params=BUILT_HERE)
def example_build(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param.removesuffix(".pt")) / "build"
    res = gen_build(request.param, out)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_the_default_plan_builds_and_is_bit_exact_on_held_out_images(example_build):
    report = run_heldout_bit_exact(example_build, CI_IMAGES, seed=3)
    assert report["accuracy"] >= 0.9


@pytest.mark.slow
def test_all_held_out_images_are_bit_exact(example_build):
    run_heldout_bit_exact(example_build, 2000, seed=0)


@pytest.mark.parametrize("model", ANNS)
def test_an_ann_is_refused_with_the_way_to_convert_it(model, tmp_path):
    res = gen_build(model, tmp_path / "build")
    assert res.returncode == 2
    error = res.stderr.strip().splitlines()[-1]     # after the build's progress lines
    assert error.startswith("python -m gen build: error: layer 'relu1': ")
    assert "python -m snn convert" in error and "ANN" in error
    assert not (tmp_path / "build").exists()
