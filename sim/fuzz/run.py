"""The fuzz run: draw N recipes, judge each, shrink each bug, keep it in the corpus.

    report = fuzz(nets=100, seed=0, jobs=2, out=Path("fuzz"), corpus=Path("tests/corpus"))

Recipe i of a run is drawn from `np.random.default_rng([seed, i])`, so case i of seed S is
the same model whatever N and jobs are (a failure is replayed by its seed and index alone).
Each bug is shrunk (sim.fuzz.shrink) and its smallest form written to the corpus folder as
`<verdict>-<id>.json` (the recipe and what was found) beside `<verdict>-<id>.pt` (the
checkpoint itself, so a replay does not depend on the recipe generator staying the same).
tests/test_fuzz_corpus.py replays every entry on every CI run.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from sim.fuzz.case import BUGS, Outcome, run_case, write_checkpoint
from sim.fuzz.shrink import describe, shrink
from sim.fuzz.space import draw_recipe

REPORT = "fuzz_report.json"
SHRINK_BUDGET = 40


def recipe_for(seed: int, index: int, profile: str = "ci") -> dict:
    return draw_recipe(np.random.default_rng([seed, index]), profile)


def _one(args) -> dict:
    """Worker: run case `index` of `seed` in its own folder; a JSON-able row for the report."""
    seed, index, profile, work = args
    recipe = recipe_for(seed, index, profile)
    start = time.monotonic()
    outcome = run_case(recipe, Path(work) / f"case{index}")
    return {"index": index, "seconds": round(time.monotonic() - start, 2), "model": describe(recipe),
            "recipe": recipe, **outcome.to_json()}


def run_cases(seed: int, indices, profile: str, work: Path, jobs: int, on_row=None) -> list[dict]:
    """Every case of `indices`, `jobs` at a time in worker processes (spawned: torch and
    fork do not mix), rows in index order."""
    tasks = [(seed, i, profile, str(work)) for i in indices]
    rows = []
    if jobs <= 1:
        for task in tasks:
            rows.append(_one(task))
            if on_row:
                on_row(rows[-1])
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            for row in pool.map(_one, tasks):
                rows.append(row)
                if on_row:
                    on_row(row)
    return sorted(rows, key=lambda r: r["index"])


def corpus_id(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def save_to_corpus(recipe: dict, found: dict, corpus: Path) -> Path:
    """Write the recipe and its checkpoint into the corpus folder; returns the .json path."""
    corpus.mkdir(parents=True, exist_ok=True)
    stem = f"{found['verdict']}-{corpus_id(recipe)}"
    write_checkpoint(recipe, corpus / f"{stem}.pt")
    path = corpus / f"{stem}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"model": describe(recipe), "found": found, "recipe": recipe}, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def shrink_bug(row: dict, work: Path, progress=None) -> tuple[dict, Outcome, int]:
    """The smallest recipe that fails with the same verdict as `row`, its outcome, runs spent."""
    last: dict = {}

    def still_fails(candidate: dict) -> bool:
        outcome = run_case(candidate, work / "shrink")
        if outcome.verdict == row["verdict"]:
            last[corpus_id(candidate)] = outcome
            return True
        return False

    small, runs = shrink(row["recipe"], still_fails, SHRINK_BUDGET, progress)
    outcome = last.get(corpus_id(small)) or Outcome(row["verdict"], row["message"], row["stage"])
    return small, outcome, runs


def fuzz(nets: int, seed: int, *, jobs: int = 1, out: Path = Path("fuzz"), corpus: Path | None = None,
         profile: str = "ci", start: int = 0, shrink_bugs: bool = True, progress=None) -> dict:
    """Run cases start..start+nets-1 of `seed`; returns (and writes to out/fuzz_report.json) the report."""
    out = Path(out)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: None)
    began = time.monotonic()

    def on_row(row):
        mark = "BUG " if row["verdict"] in BUGS else ""
        say(f"case {row['index']}: {mark}{row['verdict']} ({row['seconds']:.1f} s) {row['model']}"
            + (f": {row['message'][:200]}" if row["verdict"] != "exact" else ""))

    rows = run_cases(seed, range(start, start + nets), profile, work, jobs, on_row)
    bugs = []
    for row in rows:
        if row["verdict"] not in BUGS:
            continue
        entry = {"index": row["index"], "verdict": row["verdict"], "message": row["message"], "model": row["model"]}
        if shrink_bugs:
            say(f"shrinking case {row['index']} ({row['verdict']})")
            small, outcome, runs = shrink_bug(row, work, say)
            found = {"verdict": outcome.verdict, "message": outcome.message, "stage": outcome.stage,
                     "fuzz_seed": seed, "fuzz_index": row["index"], "shrink_runs": runs}
            entry.update(shrunk=describe(small), shrink_runs=runs)
            if corpus is not None:
                entry["corpus"] = str(save_to_corpus(small, found, Path(corpus)))
        bugs.append(entry)
    counts = Counter(row["verdict"] for row in rows)
    report = {"seed": seed, "start": start, "nets": nets, "profile": profile, "jobs": jobs,
              "seconds": round(time.monotonic() - began, 1), "verdicts": dict(sorted(counts.items())),
              "bugs": bugs, "cases": [{k: v for k, v in row.items() if k != "recipe"} for row in rows]}
    (out / REPORT).write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return report
