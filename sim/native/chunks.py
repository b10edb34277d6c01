"""`sim run --jobs N` and `--cluster ADDRESS`: the images split into consecutive chunks, each
its own native run from reset (compared with the golden model where it ran), merged into
one report (sim/reports.py).

Chunks run in worker processes here, or as tasks on an existing Dask distributed scheduler
(the optional extra `tern-fpga[cluster]`). A Dask worker runs `run_chunk` by name, so it
needs Tern installed and the build folder at the same path (a shared file system); it finds
the compiled model in its own cache ($TERN_CACHE) or compiles it there once.

Chunk k gets seed + k (its back-pressure draws differ from its neighbours'); without
back-pressure every chunk is the same deterministic run whatever the seed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import sim.network as network   # a cycle: sim.network imports this module; names are read at call time
from sim.reports import merge

CLUSTER_EXTRA = "pip install 'tern-fpga[cluster]' (dask[distributed])"
CONNECT_TIMEOUT_S = 20


def chunk_bounds(images: int, chunks: int) -> list[tuple[int, int]]:
    """(offset, count) of each chunk: consecutive, sizes differing by at most one."""
    base, extra = divmod(images, chunks)
    bounds, offset = [], 0
    for k in range(chunks):
        count = base + (k < extra)
        bounds.append((offset, count))
        offset += count
    return bounds


def run_chunk(build_dir: str, start: int, total: int, count: int, offset: int, backpressure: bool,
              seed: int) -> dict:
    """Images offset..offset+count-1 of a run of `total` from `start`, one native run, checked:
    plain data for any worker."""

    build = network.load_build(build_dir)
    result = network.simulate_images(build, count, start=start, bench="native", backpressure=backpressure,
                             seed=seed, offset=offset, total=total, quiet=True)
    return {"offset": offset, "report": result.report, "classes": result.classes.tolist(),
            "mismatches": [(m.image, m.what) for m in result.mismatches]}


def simulate_chunks(build, images: int, *, start: int, chunks: int, backpressure: bool, seed: int,
                    cluster: str | None = None, progress: bool = False):
    """The chunks of a run, simulated in parallel and merged into one sim.network.SimResult."""

    if cluster is None:
        network.native_model(build)           # compiled here once, before the workers look it up
    tasks = [(str(build.path), start, images, count, offset, backpressure, seed + k)
             for k, (offset, count) in enumerate(chunk_bounds(images, chunks))]
    bar = _bar(images, progress)
    try:
        done = on_cluster(cluster, tasks, bar) if cluster else in_processes(tasks, bar)
    finally:
        if bar is not None:
            bar.close()
    done.sort(key=lambda d: d["offset"])
    counters = tuple(c["register"] for c in build.manifest["registers"]["event_counters"])
    report = merge([d["report"] for d in done], counters=counters)
    report["cluster"] = cluster
    mismatches = [network.Mismatch(image, what) for d in done for image, what in d["mismatches"]]
    classes = np.array([c for d in done for c in d["classes"]], np.int64)
    return network.SimResult(report=report, mismatches=mismatches, classes=classes)


def in_processes(tasks: list[tuple], bar=None) -> list[dict]:
    """Each chunk in its own `python -m sim.native.chunks` process, all at once. Child
    interpreters, not multiprocessing: spawn would re-import the caller's main script (a
    user's script without a __main__ guard would run again) and fork copies its threads."""

    # The workers import this package from where the caller did (a checkout on sys.path, not
    # installed, from any working folder).
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    with tempfile.TemporaryDirectory(prefix="tern-chunks-") as tmp:
        procs = []
        for k, task in enumerate(tasks):
            out = Path(tmp) / f"chunk{k}.json"
            procs.append((subprocess.Popen([sys.executable, "-m", __name__, json.dumps(task), str(out)], env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), out))
        done = []
        try:
            for proc, out in procs:
                _, stderr = proc.communicate()
                if proc.returncode != 0 or not out.is_file():
                    lines = stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
                    raise network.SimulationError(f"a chunk's worker failed: {lines[-1]}")
                done.append(json.loads(out.read_text()))
                if bar is not None:
                    bar.update(len(done[-1]["classes"]))
        finally:
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return done


def on_cluster(address: str, tasks: list[tuple], bar=None) -> list[dict]:

    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise network.SimulationError(f"--cluster needs Dask distributed: {CLUSTER_EXTRA}") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise network.SimulationError(f"cannot reach the Dask scheduler at {address}: {' '.join(str(exc).split())}") from None
    with client:
        futures = [client.submit(run_chunk, *task, pure=False) for task in tasks]
        return _collect(dask_completed(futures), bar)


def _collect(finished, bar) -> list[dict]:
    out = []
    for future in finished:
        out.append(future.result())
        if bar is not None:
            bar.update(len(out[-1]["classes"]))
    return out


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="simulating (chunks)", dynamic_ncols=True, leave=False)


def main(argv: list[str]) -> int:
    """A chunk worker: `python -m sim.native.chunks TASK_JSON OUT_JSON` (in_processes starts it)."""
    task, out = json.loads(argv[0]), Path(argv[1])
    result = run_chunk(*task)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
