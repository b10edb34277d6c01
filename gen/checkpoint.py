"""Reading a checkpoint file (docs/checkpoint.md): the only place gen touches a model file.

`torch.load(path, weights_only=True)` never runs code from the file. The dict it returns
is checked for the format tag and version here and validated by snn.checkpoint (the one
definition of a valid model); gen.floatnet checks the arch and state_dict again as it
parses them, layer by layer, so in-memory dicts get the same protection.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

FORMAT = "tern-checkpoint"
SUPPORTED_VERSIONS = (1,)


class CheckpointError(ValueError):
    """A file that is not a readable Tern checkpoint."""


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
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a readable Tern checkpoint: not a torch.save file") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", str(exc), re.S)
        detail = " ".join(detail.group(1).split()).split(". ")[0] if detail else type(exc).__name__
        raise CheckpointError(f"{path} is not a Tern checkpoint: it needs code to load, which is refused "
                              f"(weights_only): {detail}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            UnicodeDecodeError, AttributeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path} is not a readable Tern checkpoint: {first}") from None
    ckpt = check_checkpoint_dict(ckpt, source=str(path))
    # snn's validator holds the rules of a valid model (arch, parameter shapes, finiteness);
    # gen's parser checks again layer by layer, so dicts that never were files are safe too.
    from snn.checkpoint import validate_checkpoint
    return validate_checkpoint(ckpt, source=str(path))
