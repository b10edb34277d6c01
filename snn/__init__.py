"""Tern's PyTorch side: ternary/binary LIF neurons, models, training, checkpoints.

Importing `snn` does not import torch: `snn.data` is numpy-only so that the compiler,
the simulator and the host can read the data set without PyTorch.
"""
