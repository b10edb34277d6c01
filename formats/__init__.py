"""The formats Tern's stages share, readable with the standard library and numpy alone.

* `formats.mnist`: the MNIST IDX files and the project's fixed train/held-out split.
* `formats.manifest`: a build folder's manifest.json (shapes, packing, register offsets).
* `formats.regmap`: the AXI4-Lite register map: offsets, bit positions and the MAGIC value.
* `formats.heldout`: the held-out images a deployment ships as .npy files.

Everyone who reads these imports them from here: the trainer (snn), the compiler (gen), the
hardware (hw, for the register bits), the simulator (sim) and the board's driver (host),
which has only numpy and pynq, so this package imports nothing else of Tern
(tests/test_layering.py checks it) and `gen deploy` ships it to the board beside host/.
"""
