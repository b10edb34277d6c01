"""cocotb testbench modules (run through sim.runner)."""
