"""The native whole-network bench: a build's top compiled by Verilator with harness.cpp
(model.py: compiled once per RTL, cached), run on packed images (bench.py), and split into
chunks over processes or a Dask cluster (chunks.py). sim/network.py is its user."""
