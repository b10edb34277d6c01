"""Run a build's compiled model (sim/native/harness.cpp) on packed images; read back a RawRun.

The harness gets three files: a config (the packing and the register map from manifest.json,
back-pressure, seed, hang timeout), the images as raw uint64 beats, and where to write its
JSON. What it writes becomes the same sim.network.RawRun the cocotb bench gives, so the
comparison with the golden model and the report are the same code.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sim.axis import pack_images

IDENTITY = ("MAGIC", "REGMAP_VERSION", "MODEL_ID", "TIMESTEPS", "NUM_CLASSES", "PIXELS_PER_IMAGE", "NUM_LAYERS")
HARNESS_FAILED = 2            # the harness's exit status for bad input (config, beats, output)


def control_value(regmap: dict) -> int:
    """CONTROL's CLEAR_COUNTERS | CLEAR_ERRORS, the bench's first write (as sim/tb/network.py)."""
    reg = next(r for r in regmap["registers"] if r["name"] == "CONTROL")
    return (1 << reg["fields"]["CLEAR_COUNTERS"]) | (1 << reg["fields"]["CLEAR_ERRORS"])


def config_text(manifest: dict, images: int, *, gap: float, stall: float, seed: int, timeout: int) -> str:
    """The harness's config: one `key value...` line each (names have no spaces: Verilog identifiers)."""
    regmap = manifest["registers"]
    names = [r["name"] for r in regmap["registers"]]
    lines = [f"images {images}", f"beats_per_image {int(manifest['input']['beats_per_image'])}",
             f"result_beats {int(manifest['output']['beats_per_image'])}",
             f"classes {int(manifest['output']['num_classes'])}",
             f"gap {float(gap)!r}", f"stall {float(stall)!r}", f"seed {int(seed)}", f"timeout {int(timeout)}",
             f"control {control_value(regmap)}"]
    lines += [f"reg {r['name']} {int(r['offset'])}" for r in regmap["registers"]]
    lines += [f"identity {name}" for name in IDENTITY if name in names]
    lines += [f"event {c['layer']} {c['register']}" for c in regmap["event_counters"]]
    return "\n".join(lines) + "\n"


def run_harness(binary: Path, manifest: dict, images: np.ndarray, *, gap: float, stall: float, seed: int,
                timeout: int, progress=None) -> dict:
    """Run the binary on uint8 images; returns its JSON (error set on a hang or a protocol
    error). `progress(done)` is called as results come back. Raises RuntimeError when the
    harness could not run at all."""
    beats = pack_images(images, manifest["input"])
    with tempfile.TemporaryDirectory(prefix="tern-native-") as tmp:
        tmp = Path(tmp)
        (tmp / "config").write_text(config_text(manifest, len(images), gap=gap, stall=stall, seed=seed,
                                                timeout=timeout))
        beats.astype("<u8").tofile(tmp / "beats")
        command = [str(binary), str(tmp / "config"), str(tmp / "beats"), str(tmp / "out.json")]
        if progress is None:
            done = subprocess.run(command, capture_output=True, text=True)
            stderr = done.stderr
        else:
            with subprocess.Popen([*command, "--progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) as proc:
                for line in proc.stdout:
                    progress(int(line))
                stderr = proc.stderr.read()
            done = proc
        if done.returncode not in (0, 1) or not (tmp / "out.json").is_file():
            detail = " ".join(stderr.split())[-300:] or f"exit status {done.returncode}"
            raise RuntimeError(f"the native model {binary} failed: {detail}")
        return json.loads((tmp / "out.json").read_text())


def arrays(out: dict, classes: int) -> dict:
    """The harness's lists as the arrays RawRun holds."""
    return {"logits": np.array(out["logits"], np.int64).reshape(-1, classes),
            "classes": np.array(out["classes"], np.int64),
            "in_cycles": np.array(out["in_cycles"], np.int64).reshape(-1, 2),
            "out_cycles": np.array(out["out_cycles"], np.int64).reshape(-1, 2)}
