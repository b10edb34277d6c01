"""Tern checkpoints (`model.pt`, docs/checkpoint.md): save atomically, load safely, validate.

Loading always uses `torch.load(..., weights_only=True)`: a checkpoint is data, and a file
that would need to run code to load is refused before any of it runs. `validate_checkpoint`
checks a loaded dict without building a model, so the compiler can reuse it.

torch is imported inside the functions that need it: `validate_checkpoint` itself only
looks at shapes and dtypes of what it is given.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .arch import ArchError, expected_parameters, is_optional_parameter, normalize_arch

FORMAT = "tern-checkpoint"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
TOP_LEVEL_KEYS = ("format", "version", "arch", "state_dict", "meta")
# Parameter values no trained model comes near (weights and BatchNorm statistics of a trained
# SNN are O(1) to O(10^3)); beyond them the compiler's float64 products overflow (1e308 gave
# "math domain error"). A nonzero value below float32's smallest normal is a subnormal: no
# training step makes one, and the compiler's reciprocals of it overflow.
MAX_PARAMETER_MAGNITUDE = 1e12
MIN_NORMAL_MAGNITUDE = 2.0 ** -126  # float32's smallest normal number
VARIANCE_SUFFIX = "running_var"     # BatchNorm (and MPBN) variances: must be >= 0
EXPECTED = "expected a Tern checkpoint written by `python -m snn train`"

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A file or dict that is not a valid Tern checkpoint; the message says what it is instead."""


def _describe(obj: Any) -> str:
    if isinstance(obj, dict):
        keys = list(obj)[:5]
        return f"a dict with keys {keys}{' ...' if len(obj) > 5 else ''}"
    return f"a {type(obj).__name__}"


def _looks_like_state_dict(obj: dict) -> bool:
    return bool(obj) and all(type(v).__name__ in ("Tensor", "Parameter") for v in obj.values())


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{name} must be JSON-serialisable: {exc}") from None


def validate_checkpoint(ckpt: Any, source: str = "checkpoint") -> dict:
    """Check a loaded checkpoint dict; return it with its arch normalised. Raises CheckpointError.

    Checks the format tag and version, the arch (via `snn.arch`), that the state_dict has
    exactly the entries the arch needs (BatchNorm `num_batches_tracked` counters tolerated)
    with the right shapes, floating dtypes and finite values, and that meta is JSON.
    """
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{source} is not a Tern checkpoint: it holds {_describe(ckpt)}, "
                              f"expected a dict with keys {list(TOP_LEVEL_KEYS)}")
    if "format" not in ckpt:
        what = "a bare PyTorch state_dict" if _looks_like_state_dict(ckpt) else _describe(ckpt)
        raise CheckpointError(f"{source} is not a Tern checkpoint: it is {what}; expected a dict with "
                              f"format={FORMAT!r} (save models with snn.checkpoint.save_checkpoint)")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"{source} is not a Tern checkpoint: format is {ckpt['format']!r}, expected {FORMAT!r}")
    version = ckpt.get("version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise CheckpointError(f"{source} has checkpoint format version {version!r}; this reader knows "
                              f"versions {list(SUPPORTED_VERSIONS)}")
    missing = [key for key in TOP_LEVEL_KEYS if key not in ckpt]
    extra = sorted(set(ckpt) - set(TOP_LEVEL_KEYS))
    if missing or extra:
        raise CheckpointError(f"{source}: a version-1 checkpoint has exactly the keys {list(TOP_LEVEL_KEYS)}; "
                              f"missing {missing}, unexpected {extra}")
    try:
        arch = normalize_arch(ckpt["arch"])
    except ArchError as exc:
        raise CheckpointError(f"{source}: invalid arch: {exc}") from None
    _check_json(f"{source}: arch", ckpt["arch"])
    state = ckpt["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: state_dict must be a dict of tensors, not {_describe(state)}")
    expected = expected_parameters(arch)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(k for k in set(state) - set(expected) if not is_optional_parameter(arch, k))
    if missing or unexpected:
        raise CheckpointError(f"{source}: state_dict does not match the arch: missing {missing}, "
                              f"unexpected {unexpected}")
    for key, shape in expected.items():
        _check_tensor(source, key, state[key], shape)
    if not isinstance(ckpt["meta"], dict):
        raise CheckpointError(f"{source}: meta must be a dict, not {_describe(ckpt['meta'])}")
    _check_json(f"{source}: meta", ckpt["meta"])
    return {**ckpt, "arch": arch}


def _check_tensor(source: str, key: str, value: Any, shape: tuple[int, ...]) -> None:
    if type(value).__name__ not in ("Tensor", "Parameter"):
        raise CheckpointError(f"{source}: state_dict[{key!r}] must be a tensor, not {_describe(value)}")
    if tuple(value.shape) != shape:
        raise CheckpointError(f"{source}: state_dict[{key!r}] has shape {list(value.shape)}, "
                              f"the arch needs {list(shape)}")
    if not value.is_floating_point():
        raise CheckpointError(f"{source}: state_dict[{key!r}] must be floating point, not {value.dtype}")
    if value.numel():
        _check_values(source, key, value.detach().double().flatten())


def _check_values(source: str, key: str, values) -> None:
    """Finite, within MAX_PARAMETER_MAGNITUDE, no subnormals, variances >= 0; the message names layer and parameter."""
    layer, _, param = key.partition(".")
    magnitude = values.abs()
    rules = (
        (~values.isfinite(), "holds NaN or infinite values"),
        (magnitude > MAX_PARAMETER_MAGNITUDE, f"holds a value beyond ±{MAX_PARAMETER_MAGNITUDE:g}"),
        ((magnitude > 0) & (magnitude < MIN_NORMAL_MAGNITUDE),
         f"holds a subnormal value (nonzero, below float32's smallest normal {MIN_NORMAL_MAGNITUDE:.4g})"),
        ((values < 0) if key.endswith(VARIANCE_SUFFIX) else None, "is a variance and must be >= 0"),
    )
    for bad, problem in rules:
        if bad is not None and bool(bad.any()):
            index = int(bad.nonzero()[0, 0])
            raise CheckpointError(f"{source}: state_dict[{key!r}] {problem} (layer {layer!r}, parameter "
                                  f"{param!r}: element {index} is {float(values[index])!r})")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load and validate a checkpoint file as a dict (arch normalised), without building a model."""
    return validate_checkpoint(load_plain_data(path), source=str(path))


def load_plain_data(path: str | os.PathLike) -> Any:
    """What a torch.save file holds, loaded with weights_only=True: no code from the file runs.

    Every way a file can fail to be one (missing, empty, truncated, a zip or pickle of something
    else, a pickle that needs code) becomes a CheckpointError that names the file and says what
    was expected; torch's own wording (which suggests weights_only=False) never reaches the user.
    """
    import pickle
    import warnings

    import torch

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path} ({EXPECTED})")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file ({EXPECTED})")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (expected a Tern checkpoint; an interrupted write?)")
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive; legacy torch.save files and plain pickles start with the
    # pickle PROTO opcode 0x80. Anything else cannot be a checkpoint: say so without unpickling.
    is_zip, is_pickle = head == b"PK\x03\x04", head[:1] == b"\x80"
    if not (is_zip or is_pickle):
        raise CheckpointError(f"{path} is not a readable Tern checkpoint (corrupt, truncated or not a "
                              f"torch.save file): it starts with bytes {head.hex()}, not a zip archive or a pickle")
    if is_zip:
        _check_torch_archive(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise, the refusal says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        what = "a torch.save archive" if is_zip else "a pickle (not a torch.save archive)"
        raise CheckpointError(f"{path} is not a Tern checkpoint: it is {what} that needs code to load, which "
                              f"is refused without running it (weights_only){_unpickler_reason(exc)}; "
                              f"{EXPECTED}") from None
    except EOFError:
        raise CheckpointError(f"{path} is truncated: its data ends early ({EXPECTED})") from None
    except Exception:  # noqa: BLE001 - torch's wording of a corrupt file is no help to the user
        raise CheckpointError(f"{path} is not a readable Tern checkpoint (corrupt, truncated or not a "
                              f"torch.save file); {EXPECTED}") from None


def _check_torch_archive(path: Path) -> None:
    """A complete zip archive laid out as torch.save writes it (one folder with data.pkl)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
        raise CheckpointError(f"{path} is truncated or corrupt: not a complete zip archive "
                              f"({EXPECTED})") from None
    if damaged is not None:
        raise CheckpointError(f"{path} is corrupt: member {damaged!r} fails its checksum ({EXPECTED})")
    if not any(name.count("/") == 1 and name.endswith("/data.pkl") for name in names):
        raise CheckpointError(f"{path} is a zip archive but not a torch.save file (no <folder>/data.pkl in it; "
                              f"{EXPECTED})")


def _unpickler_reason(exc: Exception) -> str:
    """'; it references <global>' when torch names the global it refused, else ''.

    Only the global's dotted name is taken from torch's message: the rest of it suggests
    re-running with weights_only=False, which is exactly what must not be done.
    """
    match = re.search(r"GLOBAL\s+([A-Za-z_][\w.]*)", str(exc))
    return f"; it references {match.group(1)}" if match else ""


def load_checkpoint(path: str | os.PathLike, surrogate_function=None):
    """(model in eval mode, checkpoint dict) from a checkpoint file; raises CheckpointError."""
    from .model import build_model

    ckpt = read_checkpoint(path)
    model = build_model(ckpt["arch"], surrogate_function=surrogate_function)
    state = {k: v for k, v in ckpt["state_dict"].items() if k in expected_parameters(ckpt["arch"])}
    # strict=False only for the BatchNorm step counters, which Tern does not store;
    # validate_checkpoint has already checked every other key and shape.
    result = model.load_state_dict(state, strict=False)
    leftover = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:
        raise CheckpointError(f"{path}: state_dict does not fit the model: missing {leftover}, "
                              f"unexpected {result.unexpected_keys}")
    model.eval()
    return model, ckpt


def checkpoint_dict(model, meta: dict | None = None) -> dict:
    """The checkpoint dict of a SpikingNet (tensors copied to CPU, step counters dropped)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    _check_json("meta", meta or {})
    # A JSON round trip turns str/float subclasses (torch.__version__ is one) into the plain
    # types that torch.load(weights_only=True) accepts.
    ckpt = {"format": FORMAT, "version": VERSION, "arch": model.arch, "state_dict": state,
            "meta": json.loads(json.dumps(meta or {}))}
    return validate_checkpoint(ckpt, source="model to save")


def check_writable(path: str | os.PathLike) -> Path:
    """Refuse, before any work is done, a checkpoint path that save_checkpoint could not write.

    Training takes minutes; finding out at the end that --out is a folder, lies under a file,
    or sits in a read-only place would lose the result. The nearest existing folder on the way
    to `path` must accept a new file (tried for real: permission bits lie on read-only mounts).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; expected a checkpoint file name such as {path / 'model.pt'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise CheckpointError(f"cannot write {path}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tern-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc} (in folder {folder})") from None
    return path


def save_checkpoint(model, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write `model` (a SpikingNet) and `meta` to `path` atomically; returns the path.

    The file is written to a temporary name in the same directory and renamed into place, so
    a reader never sees a half-written checkpoint under the final name.
    """
    import torch

    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict or None, not {meta!r}")
    ckpt = checkpoint_dict(model, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is meant to be shared
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write (full disk) names no file
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    log.info("saved checkpoint %s (%d bytes)", path, path.stat().st_size)
    return path


