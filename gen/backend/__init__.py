"""The back end: what a plan becomes.

    emit        IR + plan -> one Verilog file per engine and the top (through gen.engines)
    regmap      the register map (formats.regmap is its one definition)
    manifest    manifest.json for the host and testbenches, report.json/.md for people
    synth       resource counts from yosys synth_xilinx
    toolchain   where Verilator lives (lint)
    plots       figures of a recorded golden run
    nir_export  a compiled network -> a NIR graph
"""
