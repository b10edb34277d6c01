"""The shipped example builds and fits the PYNQ-Z2's xc7z020 by the synthesis report.

Slow (emit, lint and yosys synth_xilinx of the full MNIST network: minutes on 2 busy
cores); its timings go to the build's step.json files, never into an assert.
"""
import json
from pathlib import Path

import pytest

from gen.flow.build import build

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist_ternary_t2.pt"


@pytest.mark.slow
def test_shipped_example_builds_and_fits(tmp_path):
    assert EXAMPLE.is_file(), f"{EXAMPLE} is missing: the example is committed, a missing one is an error"
    report = build(EXAMPLE, board="pynq-z2", out=tmp_path / "mnist", images=16)
    assert report["fits"] is True
    r = report["resources"]
    assert 0 < r["luts"]["used"] <= 53_200 and 0 < r["bram36"]["used"] <= 140
    manifest = json.loads((tmp_path / "mnist" / "manifest.json").read_text())
    assert manifest["input"]["shape"] == [1, 28, 28] and manifest["input"]["beats_per_image"] == 98
    assert manifest["classes"] == 10 and manifest["timesteps"] == 2
    assert all((tmp_path / "mnist" / f).is_file() for f in manifest["files"]["rtl"])
