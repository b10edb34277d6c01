"""Saving and loading the IR as a documented file pair, and the model ID (docs/ir.md).

    <stem>.json   the structure: names, kinds, shapes, ops, neuron parameters, array keys,
                  the SHA-256 of the .npz and the model ID
    <stem>.npz    every array, int64, stored without pickle

The .npz is written first and the .json last, each to a temporary file renamed into
place, so a reader that finds a .json whose npz hash matches has a complete pair.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from gen.ir import INPUT, Layer, Network, NeuronTables, Projection, op_from_json

FORMAT = "tern-ir"
VERSION = 2             # written when a layer has a converted neuron (docs/msat.md §4)
READ_VERSIONS = (1, 2)  # version 1: ternary and binary only; still written for those, unchanged


class IRFileError(ValueError):
    """An IR file pair is missing, corrupt, or of a format/version this reader does not know."""


def _arrays_and_structure(net: Network) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for layer in net.layers:
        projections = []
        for i, p in enumerate(layer.projections):
            key = f"{layer.name}.proj{i}.weight"
            arrays[key] = p.weight
            projections.append({"source": p.source, "op": p.op.to_json(), "weight": key})
        entry = {"name": layer.name, "kind": layer.kind, "shape": list(layer.shape),
                 "neuron": layer.neuron, "leak_shift": layer.leak_shift, "projections": projections}
        for field in ("bias", "theta_pos", "theta_neg", "scale_exp"):
            value = getattr(layer, field)
            if value is None:
                entry[field] = None
            else:
                key = f"{layer.name}.{field}"
                arrays[key] = value
                entry[field] = key
        if layer.tables is not None:  # only then: version-1 networks keep their files and model ID
            tables = {"signed": layer.tables.signed, "ladder_steps": layer.tables.ladder_steps,
                      "lut_half": layer.tables.lut_half, "half_start": layer.tables.half_start}
            for field in NeuronTables.ARRAYS:
                value = getattr(layer.tables, field)
                tables[field] = None if value is None else f"{layer.name}.tables.{field}"
                if value is not None:
                    arrays[tables[field]] = value
            entry["tables"] = tables
        layers.append(entry)
    structure = {"name": net.name, "input_shape": list(net.input_shape), "timesteps": net.timesteps,
                 "wbits": net.wbits, "layers": layers}
    return structure, arrays


def model_id(net: Network) -> int:
    """A stable 32-bit ID: the first 4 bytes (big-endian) of a SHA-256 over the canonical JSON
    structure followed by every array (key, shape, little-endian int64 bytes) in key order."""
    structure, arrays = _arrays_and_structure(net)
    digest = hashlib.sha256(json.dumps(structure, sort_keys=True, separators=(",", ":")).encode())
    for key in sorted(arrays):
        array = arrays[key]
        digest.update(key.encode() + b"\0" + json.dumps(list(array.shape), separators=(",", ":")).encode() + b"\0")
        digest.update(np.ascontiguousarray(array, dtype="<i8").tobytes())
    return int.from_bytes(digest.digest()[:4], "big")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    stem = Path(stem)
    if stem.suffix in (".json", ".npz"):
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def save(net: Network, stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.npz`; returns their paths."""
    json_path, npz_path = paths(stem)
    structure, arrays = _arrays_and_structure(net)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.ascontiguousarray(v, dtype="<i8") for k, v in arrays.items()})
    npz_bytes = buffer.getvalue()
    version = VERSION if any(layer.tables is not None for layer in net.layers) else 1
    document = {"format": FORMAT, "version": version, "model_id": model_id(net),
                "npz": npz_path.name, "npz_sha256": hashlib.sha256(npz_bytes).hexdigest(), **structure}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(npz_path, npz_bytes)
    _atomic_write(json_path, (json.dumps(document, indent=1) + "\n").encode())
    return json_path, npz_path


NPZ_MAGIC = b"PK\x03\x04"                   # an .npz is a zip archive
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
EXPECTED_PAIR = "an IR file pair written by gen (docs/ir.md)"


def _read_document(json_path: Path) -> dict:
    try:
        document = json.loads(json_path.read_bytes())
    except FileNotFoundError:
        raise IRFileError(f"IR file not found: {json_path} (an IR is the pair <stem>.json and <stem>.npz, "
                          f"docs/ir.md)") from None
    except IsADirectoryError:
        raise IRFileError(f"{json_path} must be an IR .json file, not a folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IRFileError(f"{json_path} must be {EXPECTED_PAIR}, but it is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise IRFileError(f"{json_path} must be a {FORMAT!r} file, not format {found!r}")
    if document.get("version") not in READ_VERSIONS or isinstance(document.get("version"), bool):
        raise IRFileError(f"{json_path}: version must be one of {list(READ_VERSIONS)}, "
                          f"not {document.get('version')!r}")
    # Integrity is not optional: the pair is only trusted when both checks can run.
    model = document.get("model_id")
    if isinstance(model, bool) or not isinstance(model, int) or not 0 <= model < 2 ** 32:
        raise IRFileError(f"{json_path}: model_id must be the model's 32-bit ID (an int), not {model!r}")
    sha = document.get("npz_sha256")
    if not isinstance(sha, str) or not SHA256_HEX.match(sha):
        raise IRFileError(f"{json_path}: npz_sha256 must be the SHA-256 of the .npz as 64 lowercase hex digits, "
                          f"not {sha!r}")
    return document


def _npz_path(json_path: Path, document: dict) -> Path:
    """The .npz named by the json: a plain file name beside it, never a path elsewhere."""
    name = document.get("npz")
    if (not isinstance(name, str) or not name.endswith(".npz") or name in (".npz",) or "/" in name
            or "\\" in name or "\0" in name or name.startswith("..")):
        raise IRFileError(f"{json_path}: npz must be the name of a .npz file beside it (no folders, no '..'), "
                          f"not {name!r}")
    return json_path.with_name(name)


def _read_arrays(npz_path: Path, json_path: Path, sha: str) -> dict[str, np.ndarray]:
    try:
        npz_bytes = npz_path.read_bytes()
    except FileNotFoundError:
        raise IRFileError(f"IR array file not found: {npz_path} (named by {json_path})") from None
    except IsADirectoryError:
        raise IRFileError(f"{npz_path} must be an .npz file, not a folder") from None
    if hashlib.sha256(npz_bytes).hexdigest() != sha:
        raise IRFileError(f"{npz_path} does not match {json_path} (SHA-256 differs): the pair is inconsistent")
    expected = f"{npz_path} must be a numpy .npz archive of int64 arrays (docs/ir.md)"
    if not npz_bytes.startswith(NPZ_MAGIC):
        # numpy would call this "pickled data" and suggest allow_pickle: never load it that way.
        raise IRFileError(f"{expected}, but it is not a zip archive")
    try:
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - numpy raises anything from EOFError to TypeError on garbage
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if "pickle" in detail:
            detail = "an array holds Python objects"
        raise IRFileError(f"{expected}; an array in it cannot be read: {detail[:200]}") from None
    bad = sorted(k for k, v in arrays.items() if v.dtype != np.dtype("<i8") and v.dtype != np.dtype("int64"))
    if bad:
        raise IRFileError(f"{expected}, but {bad[0]!r} is {arrays[bad[0]].dtype}")
    return arrays


def _tables(entry, array, json_path) -> NeuronTables | None:
    """A layer's `tables` object (version 2), or None."""
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise IRFileError(f"{json_path}: tables must be an object or null, not {entry!r}")
    return NeuronTables(signed=entry["signed"], ladder_steps=entry["ladder_steps"], lut_half=entry["lut_half"],
                        half_start=entry["half_start"],
                        **{field: array(entry[field]) for field in NeuronTables.ARRAYS})


def load(stem: str | os.PathLike) -> Network:
    """Read a file pair written by `save` (or by any tool following docs/ir.md).

    Raises IRFileError (a ValueError) naming the file and what was expected for anything
    that is not a complete, consistent pair: the json's model_id and npz_sha256 are required.
    """
    json_path, _ = paths(stem)
    document = _read_document(json_path)
    npz_path = _npz_path(json_path, document)
    arrays = _read_arrays(npz_path, json_path, document["npz_sha256"])

    def array(key):
        if key is None:
            return None
        if not isinstance(key, str) or key not in arrays:
            raise IRFileError(f"{npz_path} has no array {key!r} (named in {json_path})")
        return arrays[key]

    def listed(value, what):
        if not isinstance(value, list):
            raise IRFileError(f"{json_path}: {what} must be a list, not {value!r}")
        return value

    try:
        layers = []
        for entry in listed(document["layers"], "layers"):
            if not isinstance(entry, dict):
                raise IRFileError(f"{json_path}: every layer must be an object, not {entry!r}")
            projections = tuple(Projection(p["source"], op_from_json(p["op"]), array(p["weight"]))
                                for p in listed(entry["projections"], f"layer {entry.get('name')!r} projections"))
            layers.append(Layer(name=entry["name"], kind=entry["kind"], shape=tuple(listed(entry["shape"], "shape")),
                                projections=projections, bias=array(entry["bias"]), neuron=entry["neuron"],
                                theta_pos=array(entry["theta_pos"]), theta_neg=array(entry["theta_neg"]),
                                leak_shift=entry["leak_shift"], scale_exp=array(entry["scale_exp"]),
                                tables=_tables(entry.get("tables"), array, json_path)))
        net = Network(name=document["name"], input_shape=tuple(listed(document["input_shape"], "input_shape")),
                      timesteps=document["timesteps"], wbits=document["wbits"], layers=tuple(layers))
    except IRFileError:
        raise
    except KeyError as exc:
        raise IRFileError(f"{json_path} lacks the field {exc}") from None
    except (TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # The IR's own checks name the field (e.g. "timesteps must be an int, not '2'").
        raise IRFileError(f"{json_path} is not a valid IR: {' '.join(str(exc).split())}") from None
    if document["model_id"] != model_id(net):
        raise IRFileError(f"{json_path}: model_id {document['model_id']} does not match its contents ({model_id(net)})")
    return net


__all__ = ["save", "load", "model_id", "paths", "IRFileError", "FORMAT", "VERSION", "INPUT"]
