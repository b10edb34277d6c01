"""One held-out record from chunks of a long `python -m sim run` (issue 15's MSAT run).

    python -m benchmarks.merge_reports CHUNK.json ... --build-command "python -m gen build ..." \\
        --out benchmarks/msat_heldout.json

The MSAT example takes about 5 s of Verilator per image, so its 2,000 held-out images are
simulated in chunks (`python -m sim run BUILD --images 100 --start K --report CHUNK.json`), each
its own simulator run from reset, on as many cores as there are. This checks that the chunks
are of one model and cover consecutive held-out images with none missing or twice, and writes
their merged report (benchmarks/sim_reports.py `merge`: sums and image-weighted means, the
latency of the first chunk, the back-to-back interval averaged over every chunk's).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.atomic import write_atomically
from benchmarks.sim_reports import merge


class ChunkError(ValueError):
    """Chunks that do not make one run: the message names the file and what is wrong."""


def load_chunk(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ChunkError(f"{path}: not a readable sim report ({e})") from None
    keys = ("model_id", "start", "images", "results", "mismatches", "layers")
    missing = [k for k in keys if k not in report] if isinstance(report, dict) else list(keys)
    if missing:
        raise ChunkError(f"{path}: not a `python -m sim run` report (missing {', '.join(missing)})")
    if report["results"] != report["images"]:
        raise ChunkError(f"{path}: {report['results']} results for {report['images']} images (a stopped run)")
    return report


def in_order(chunks: list[tuple[Path, dict]]) -> list[tuple[Path, dict]]:
    """The chunks sorted by their first image, checked to be one model's consecutive images."""
    ordered = sorted(chunks, key=lambda c: c[1]["start"])
    (first_path, first), *_ = ordered
    expected = first["start"]
    for path, report in ordered:
        if report["model_id"] != first["model_id"]:
            raise ChunkError(f"{path}: model {report['model_id']}, but {first_path} is model {first['model_id']}")
        if report["start"] < expected:
            raise ChunkError(f"{path}: starts at image {report['start']}, inside the chunk before it")
        if report["start"] > expected:
            raise ChunkError(f"{path}: starts at image {report['start']}: images {expected}..{report['start'] - 1} "
                             f"are missing")
        expected += report["images"]
    return ordered


def merged_record(chunks: list[tuple[Path, dict]], build_command: str) -> dict:
    ordered = in_order(chunks)
    reports = [report for _, report in ordered]
    record = merge(reports)
    record["build"] = build_command
    record["chunk_reports"] = [{"start": r["start"], "images": r["images"], "mismatches": r["mismatches"],
                                "accuracy": r["accuracy"], "cycles_per_image": r["cycles_per_image"],
                                "latency_cycles": r["latency_cycles"]} for r in reports]
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.merge_reports", description=__doc__.split("\n\n")[0])
    parser.add_argument("chunks", nargs="+", type=Path, help="sim reports (sim run --report) of consecutive chunks")
    parser.add_argument("--build-command", required=True, help="the gen build command of the simulated build")
    parser.add_argument("--out", type=Path, required=True, help="where to write the merged record (JSON)")
    args = parser.parse_args(argv)
    try:
        record = merged_record([(path, load_chunk(path)) for path in args.chunks], args.build_command)
        write_atomically(args.out, json.dumps(record, indent=1) + "\n")
    except ChunkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"{record['results']} images in {record['chunks']} chunks: {record['mismatches']} mismatches, accuracy "
          f"{100 * record['accuracy']:.2f} %, {record['cycles_per_image']:,.1f} cycles/image -> {args.out}")
    return 0 if record["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
