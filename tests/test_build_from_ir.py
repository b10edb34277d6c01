"""`gen.flow.build.build_from_ir` (and `gen.flow.build.build` given a Network): the public way to build an
IR, so that tests and benchmarks never run the build's steps by hand."""
import json

import numpy as np
import pytest

from gen.flow.build import STEPS, build, build_from_ir
from gen.ir.irfile import load, model_id
from gen.ir import same_network
from gen.ir.random_net import random_network


@pytest.fixture(scope="module")
def net():
    return random_network(np.random.default_rng(7), max_layers=3, shortcuts=False, name="tiny_ir")


def test_an_ir_builds_atomically_from_the_ir_step_on(net, tmp_path):
    out = tmp_path / "build"
    report = build_from_ir(net, "pynq-z2", out, images=2, synthesise=False, lint=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["name"] == "tiny_ir" and manifest["model"]["model_id"] == model_id(net)
    assert report["out"] == str(out) and [s["name"] for s in report["steps"]] == \
        [name for name, _ in STEPS if name not in ("load", "fold_quantise", "lint")]
    # Steps keep their numbers, so the IR sits where the manifest and gen deploy look for it.
    steps = sorted(p.name for p in (out / "steps").iterdir())
    assert "03_ir" in steps and not any(s.endswith(("_load", "_fold_quantise", "_lint")) for s in steps)
    assert same_network(load(out / manifest["files"]["ir"][0]), net)
    assert not list(tmp_path.glob(".build.building-*"))     # nothing half-built left beside it


def test_build_takes_a_network_too(net, tmp_path):
    report = build(net, out=tmp_path / "b", images=0, synthesise=False, lint=False)
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["model"]["model_id"] == model_id(net)
    assert report["model"] == "tiny_ir"


def test_what_is_not_an_ir_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="net must be a gen.ir.Network, not dict"):
        build_from_ir({"layers": []}, "pynq-z2", tmp_path / "x")
    assert not (tmp_path / "x").exists()
