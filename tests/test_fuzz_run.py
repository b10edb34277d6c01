"""The fuzz run end to end: the CLI as users type it, and a bug shrunk into the corpus.

The bug here is real code judged against a docs table with one row removed: a model with a
normalised, padded input is refused (docs/limits.md, pad-pixels); without that row the
refusal is undocumented, so the fuzzer must shrink the model and keep it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sim.fuzz.limits as limits
from sim.fuzz.case import run_case
from sim.fuzz.run import save_to_corpus, shrink_bug
from sim.fuzz.shrink import describe

REPO = Path(__file__).resolve().parents[1]
PADDED = {"seed": 0, "input_shape": [2, 6, 5], "timesteps": 3, "wbits": 8, "normalization": True,
          "weights": "normal", "firing": "normal", "classes": 6, "readout_bn": True,
          "build": {"plan": "event", "lanes": "default", "backpressure": True, "seed": 3},
          # One stage: the edits that remove the bug (no padding, kernel 1, no normalisation) are the
          # only ones that build and simulate a model; the others are refused again at once.
          "stages": [
              {"op": "conv", "channels": 4, "kernel": 3, "stride": 1, "padding": 1, "bias": True, "bn": True,
               "neuron": {"type": "lif", "neuron": "ternary", "tau_shift": 2, "v_threshold": 1.0,
                          "amplitude": True, "mpbn": True}}]}


@pytest.fixture
def without_pad_pixels(monkeypatch):
    table = tuple(limit for limit in limits.documented_limits() if limit.id != "pad-pixels")
    monkeypatch.setattr(limits, "documented_limits", lambda: table)


def test_the_padded_normalised_model_is_a_documented_refusal(tmp_path):
    outcome = run_case(PADDED, tmp_path / "case")
    assert outcome.verdict == "refused" and "conv1" in outcome.message and outcome.stage in ("plan", "build")


def test_an_undocumented_refusal_is_shrunk_and_kept_in_the_corpus(without_pad_pixels, tmp_path):
    outcome = run_case(PADDED, tmp_path / "case")
    assert outcome.verdict == "undocumented"
    row = {"recipe": PADDED, **outcome.to_json()}
    small, shrunk, runs = shrink_bug(row, tmp_path / "work")
    assert shrunk.verdict == "undocumented" and runs > 0
    assert small["timesteps"] == 1 and small["stages"][0]["channels"] == 1 and small["classes"] == 2
    assert small["input_shape"][0] == 1 and not small["stages"][0]["bn"] and not small["readout_bn"]
    assert small["stages"][0]["padding"] == 1 and small["normalization"]      # what the bug needs stays
    path = save_to_corpus(small, {"verdict": shrunk.verdict, "message": shrunk.message}, tmp_path / "corpus")
    entry = json.loads(path.read_text())
    assert entry["recipe"] == small and entry["model"] == describe(small)
    assert path.name.startswith("undocumented-") and path.with_suffix(".pt").is_file()
    # The saved checkpoint is a plain one (loads with weights_only) and replays the same way.
    assert torch.load(path.with_suffix(".pt"), weights_only=True)["arch"]["input_shape"] == small["input_shape"]
    replay = run_case(small, tmp_path / "replay", model=path.with_suffix(".pt"))
    assert replay.verdict == "undocumented"


def test_the_cli_from_the_repository_root_with_a_relative_out(tmp_path):
    out = os.path.relpath(tmp_path / "fz", REPO)
    res = subprocess.run([sys.executable, "-m", "sim", "fuzz", "--nets", "2", "--seed", "2026", "--jobs", "2",
                          "--out", out, "--corpus", os.path.relpath(tmp_path / "corpus", REPO)],
                         capture_output=True, text=True, cwd=REPO)
    report = json.loads((tmp_path / "fz" / "fuzz_report.json").read_text())
    assert [case["index"] for case in report["cases"]] == [0, 1]
    assert res.returncode == (1 if report["bugs"] else 0), res.stderr[-2000:]
    assert f"2 models (seed 2026" in res.stdout
    assert not (tmp_path / "fz" / "work").exists()


@pytest.mark.parametrize("args, message", [
    (["--nets", "0"], "--nets must be at least 1"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--start", "-1"], "--start must be >= 0"),
    (["--profile", "huge"], "invalid choice"),
])
def test_bad_options_are_one_line_and_exit_2(args, message):
    res = subprocess.run([sys.executable, "-m", "sim", "fuzz", *args], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2 and message in res.stderr and res.stderr.count("\n") == 1
