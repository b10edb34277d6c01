"""Reading a checkpoint file (docs/checkpoint.md): the only place gen touches a model file.

The file is loaded by snn.checkpoint.load_plain_data (`torch.load(path, weights_only=True)`:
no code from the file runs, and every unreadable file becomes one CheckpointError naming the
file), checked for the format tag and version here, and validated by snn.checkpoint (the one
definition of a valid model); gen.frontend.floatnet checks the arch and state_dict again as it parses
them, layer by layer, so in-memory dicts get the same protection.
"""
from __future__ import annotations

import os

from snn.checkpoint import CheckpointError, load_plain_data, validate_checkpoint

from gen.frontend.nir_import import read_nir

FORMAT = "tern-checkpoint"
SUPPORTED_VERSIONS = (1,)
__all__ = ["CheckpointError", "FORMAT", "SUPPORTED_VERSIONS", "check_checkpoint_dict", "read_checkpoint"]


def check_checkpoint_dict(ckpt, source: str = "checkpoint") -> dict:
    """The top level of a checkpoint dict: format, version, arch, state_dict."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{source} is not a Tern checkpoint: it holds a {type(ckpt).__name__}, "
                              f"expected a dict with format={FORMAT!r}")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a Tern checkpoint: format must be {FORMAT!r}, "
                              f"not {ckpt.get('format')!r}")
    version = ckpt.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"{source}: version must be one of {list(SUPPORTED_VERSIONS)}, not {version!r}")
    for key, kind in (("arch", dict), ("state_dict", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"{source}: {key} must be a dict, not {type(ckpt.get(key)).__name__}")
    if not isinstance(ckpt.get("meta", {}), dict):
        raise CheckpointError(f"{source}: meta must be a dict")
    return ckpt


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file as a plain dict, refusing anything that would need code to load."""
    if os.fspath(path).endswith(".nir"):  # a NIR graph, mapped exactly onto a checkpoint dict (docs/interop.md)
        return read_nir(path)
    ckpt = check_checkpoint_dict(load_plain_data(path), source=str(path))
    return validate_checkpoint(ckpt, source=str(path))
