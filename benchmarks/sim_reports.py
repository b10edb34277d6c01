"""Moved to sim/reports.py (`sim run --jobs` merges its chunks with it); kept for the
benchmarks that import it from here."""
from sim.reports import merge, merge_registers  # noqa: F401
