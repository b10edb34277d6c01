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
import tempfile
from pathlib import Path

import numpy as np

from .ir import INPUT, Layer, Network, Projection, op_from_json

FORMAT = "tern-ir"
VERSION = 1


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
    document = {"format": FORMAT, "version": VERSION, "model_id": model_id(net),
                "npz": npz_path.name, "npz_sha256": hashlib.sha256(npz_bytes).hexdigest(), **structure}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(npz_path, npz_bytes)
    _atomic_write(json_path, (json.dumps(document, indent=1) + "\n").encode())
    return json_path, npz_path


def load(stem: str | os.PathLike) -> Network:
    """Read a file pair written by `save` (or by any tool following docs/ir.md)."""
    json_path, npz_path = paths(stem)
    try:
        document = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise IRFileError(f"IR file not found: {json_path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IRFileError(f"{json_path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise IRFileError(f"{json_path} must be a {FORMAT!r} file, not format {document.get('format') if isinstance(document, dict) else None!r}")
    if document.get("version") != VERSION:
        raise IRFileError(f"{json_path}: version must be {VERSION}, not {document.get('version')!r}")
    npz_path = json_path.with_name(document.get("npz", npz_path.name))
    try:
        npz_bytes = npz_path.read_bytes()
    except FileNotFoundError:
        raise IRFileError(f"IR array file not found: {npz_path}") from None
    if "npz_sha256" in document and hashlib.sha256(npz_bytes).hexdigest() != document["npz_sha256"]:
        raise IRFileError(f"{npz_path} does not match {json_path} (SHA-256 differs): the pair is inconsistent")
    try:
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:
        raise IRFileError(f"{npz_path} is not a pickle-free npz: {exc}") from None

    def array(key):
        if key is None:
            return None
        if key not in arrays:
            raise IRFileError(f"{npz_path} has no array {key!r}")
        return arrays[key]

    try:
        layers = []
        for entry in document["layers"]:
            projections = tuple(Projection(p["source"], op_from_json(p["op"]), array(p["weight"]))
                                for p in entry["projections"])
            layers.append(Layer(name=entry["name"], kind=entry["kind"], shape=tuple(entry["shape"]),
                                projections=projections, bias=array(entry["bias"]), neuron=entry["neuron"],
                                theta_pos=array(entry["theta_pos"]), theta_neg=array(entry["theta_neg"]),
                                leak_shift=entry["leak_shift"], scale_exp=array(entry["scale_exp"])))
        net = Network(name=document["name"], input_shape=tuple(document["input_shape"]),
                      timesteps=document["timesteps"], wbits=document["wbits"], layers=tuple(layers))
    except KeyError as exc:
        raise IRFileError(f"{json_path} lacks the field {exc}") from None
    if "model_id" in document and document["model_id"] != model_id(net):
        raise IRFileError(f"{json_path}: model_id {document['model_id']} does not match its contents ({model_id(net)})")
    return net


__all__ = ["save", "load", "model_id", "paths", "IRFileError", "FORMAT", "VERSION", "INPUT"]
