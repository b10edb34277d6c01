"""`python -m sim run` as users type it, for the whole-network tests of the shipped examples."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_heldout_bit_exact(build: Path, images: int, seed: int) -> dict:
    """`python -m sim run BUILD --images N --seed S` from the repository root on held-out MNIST
    images 8000..: exit 0, the bit-exact line, and the report it wrote (returned) saying the same."""
    res = subprocess.run([sys.executable, "-m", "sim", "run", str(build), "--images", str(images),
                          "--seed", str(seed)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]
    assert f"{images}/{images} images on verilator: bit-exact" in res.stdout
    report = json.loads((Path(build) / "sim_report.json").read_text())
    assert report["results"] == images and report["mismatches"] == 0 and report["bit_exact"]
    assert report["images_source"] == f"held-out MNIST images 8000..{8000 + images - 1}"
    return report


def interrupt_when(args, ready, timeout=300, env=None):
    """Start `python -m ARGS` from the repository root, send it Ctrl-C (SIGINT) once ready()
    holds, return (returncode, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", *map(str, args)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the command ended before it could be interrupted: {proc.stderr.read()}"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err
