"""benchmarks/merge_reports.py: chunks of a long `sim run` merged into one held-out record, as
typed from the repository root with relative paths; chunks that are not one run are refused.

The chunks are cut from a real sim report (benchmarks/if_subtract_heldout.json: 2,000 images of
the IF-subtract example), with their start, counts and figures set per chunk."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = json.loads((REPO / "benchmarks" / "if_subtract_heldout.json").read_text())


def chunk(start, images, accuracy=0.98, cycles=60_000.0, mismatches=0, model_id=None, results=None):
    report = copy.deepcopy(REAL)
    report.update(start=start, images=images, results=images if results is None else results,
                  accuracy=accuracy, cycles_per_image=cycles, mismatches=mismatches, bit_exact=not mismatches,
                  first_mismatches=[f"image {start}: logit differs"] * min(mismatches, 1),
                  busy_cycles=int(cycles * images), model_id=model_id or REAL["model_id"],
                  result_cycles=list(range(images)))
    return report


def merge_cli(tmp_path, reports, *extra):
    """Write the chunks under tmp_path/chunks and run the CLI from tmp_path with relative paths."""
    (tmp_path / "chunks").mkdir(exist_ok=True)
    names = []
    for i, report in enumerate(reports):
        name = f"chunks/c{i}.json"
        (tmp_path / name).write_text(json.dumps(report))
        names.append(name)
    env = {"PYTHONPATH": str(REPO), "PATH": ""}
    return subprocess.run([sys.executable, "-m", "benchmarks.merge_reports", *names, "--build-command", "gen build X",
                           "--out", "merged.json", *extra], cwd=tmp_path, capture_output=True, text=True, env=env)


def test_consecutive_chunks_in_any_order_make_one_record(tmp_path):
    reports = [chunk(100, 100, accuracy=0.97, cycles=61_000.0), chunk(0, 100, accuracy=0.99, cycles=59_000.0),
               chunk(200, 50, accuracy=1.0, cycles=60_000.0)]
    done = merge_cli(tmp_path, reports)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "merged.json").read_text())
    assert record["images"] == record["results"] == 250 and record["chunks"] == 3
    assert record["start"] == 0 and record["images_source"] == "held-out MNIST images 8000..8249"
    assert record["accuracy"] == pytest.approx((0.99 * 100 + 0.97 * 100 + 1.0 * 50) / 250)
    # The interval is weighted by each chunk's intervals between results (images − 1).
    assert record["cycles_per_image"] == pytest.approx((59_000 * 99 + 61_000 * 99 + 60_000 * 49) / 247, abs=0.01)
    assert record["busy_cycles"] == 59_000 * 100 + 61_000 * 100 + 60_000 * 50
    assert record["bit_exact"] and record["mismatches"] == 0
    assert "result_cycles" not in record and "registers" not in record
    assert [c["start"] for c in record["chunk_reports"]] == [0, 100, 200]
    assert record["build"] == "gen build X"
    assert "250 images in 3 chunks" in done.stdout


def test_a_mismatch_in_any_chunk_fails_the_record(tmp_path):
    done = merge_cli(tmp_path, [chunk(0, 100), chunk(100, 100, mismatches=2)])
    assert done.returncode == 1
    record = json.loads((tmp_path / "merged.json").read_text())
    assert record["mismatches"] == 2 and not record["bit_exact"] and record["first_mismatches"]


@pytest.mark.parametrize("reports, message", [
    ([chunk(0, 100), chunk(150, 100)], "chunks/c1.json: starts at image 150: images 100..149 are missing"),
    ([chunk(0, 100), chunk(50, 100)], "chunks/c1.json: starts at image 50, inside the chunk before it"),
    ([chunk(0, 100), chunk(100, 100, model_id="0x1")], "chunks/c1.json: model 0x1"),
    ([chunk(0, 100, results=40)], "chunks/c0.json: 40 results for 100 images"),
])
def test_chunks_that_are_not_one_run_are_refused(tmp_path, reports, message):
    done = merge_cli(tmp_path, reports)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "merged.json").exists()


def test_a_file_that_is_not_a_report_is_refused(tmp_path):
    (tmp_path / "chunks").mkdir()
    (tmp_path / "chunks" / "bad.json").write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "benchmarks.merge_reports", "chunks/bad.json", "--build-command",
                           "x", "--out", "merged.json"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 2 and "chunks/bad.json: not a readable sim report" in done.stderr
