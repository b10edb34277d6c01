"""The compiler front end: checkpoint file -> float network -> folded -> layered -> integer IR.

    compile_checkpoint(path, wbits=8) -> Compiled(float_net, folded, layered, network)

Every stage is kept so that tools (and tests) can compare the float model with the
fake-quantised one and the golden model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gen.frontend.checkpoint import check_checkpoint_dict, read_checkpoint
from gen.frontend.floatnet import FloatNet, parse_checkpoint
from gen.frontend.folds import fold_all, to_layers
from gen.ir import Network
from gen.frontend.quantise import DEFAULT_WBITS, quantise
from gen.ir.reference import FloatNetwork


@dataclass(frozen=True, eq=False)
class Compiled:
    float_net: FloatNet        # the checkpoint as parsed (float semantics of snn)
    folded: FloatNet           # after every fold of SPEC §2
    layered: FloatNetwork      # the same, as layers of projections (float64, unquantised)
    network: Network           # the integer IR (SPEC §3)

    @property
    def meta(self) -> dict:
        return self.float_net.meta


def compile_dict(ckpt: dict, name: str = "model", wbits: int = DEFAULT_WBITS) -> Compiled:
    """Compile a checkpoint dict (docs/checkpoint.md) into the integer IR."""
    ckpt = check_checkpoint_dict(ckpt)
    float_net = parse_checkpoint(ckpt, name=name)
    folded = fold_all(float_net)
    layered = to_layers(folded)
    return Compiled(float_net=float_net, folded=folded, layered=layered, network=quantise(layered, wbits))


def compile_checkpoint(path: str | os.PathLike, wbits: int = DEFAULT_WBITS) -> Compiled:
    """Compile a checkpoint file; the network is named after the file's stem."""
    return compile_dict(read_checkpoint(path), name=Path(path).stem, wbits=wbits)
