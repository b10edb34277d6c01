"""benchmarks/msat_protocol.py as docs/msat.md §5 runs it, at a toy size: one JSON with every
step's accuracy and the markdown table beside it, whose columns stop at the run's T."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_protocol_writes_its_curves_and_table(tmp_path):
    out = tmp_path / "protocol.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks.msat_protocol", "examples/mnist_relu_small.pt",
                          "--images", "6", "--int-images", "3", "--timesteps", "4",
                          "--variants", "if-subtract,DTT+DET ladder M=4 half start", "--out", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["images"] == 6 and result["int_images"] == 3 and result["timesteps"] == 4
    for entry in result["variants"].values():
        assert len(entry["float"]) == 4 and len(entry["integer"]) == 4
        assert all(0 <= a <= 1 for a in entry["float"] + entry["integer"])
    lines = out.with_suffix(".md").read_text().splitlines()
    assert lines[0].split(" | ")[1:4] == ["T=1", "T=4", "first T ≥ ANN"]
    assert len(lines) == 2 + 4      # two variants, float and integer each
    assert any(line.startswith("| if-subtract (integer, first 3) |") for line in lines)
