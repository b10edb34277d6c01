"""Read a build folder's manifest.json: the only thing the host knows about a build.

`load_manifest(build_dir)` returns a `BuildInfo`: shapes, T, classes, the packing of input
and output beats, the register offsets by name and the model ID. Nothing else of the build
(no gen, no IR) is read, so the driver runs on a board with numpy alone. The simulator
reads a build's manifest with this same function (gen.backend.manifest writes it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
import re
from pathlib import Path, PurePosixPath

from .errors import NotATernBuild
from .regmap import REGMAP_VERSION

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "tern-build"
SUPPORTED_VERSIONS = (1,)
REGMAP_VERSIONS = (REGMAP_VERSION,)


@dataclass(frozen=True)
class BuildInfo:
    build_dir: Path
    model_name: str
    model_id: int
    timesteps: int
    num_classes: int
    input_shape: tuple[int, ...]        # (C, H, W), uint8 pixels
    pixels_per_image: int
    input_bytes: int                    # per image, whole 64-bit beats (zero-padded)
    output_words: int                   # int32 words per image: K logits and the class (no padding)
    output_bytes: int
    registers: dict                     # name -> offset
    event_counters: tuple               # (layer name, register name) in layer order
    regmap_version: int
    clock_mhz: float | None
    bitstream: str | None
    hwh: str | None
    raw: dict

    def offset(self, name: str) -> int:
        try:
            return self.registers[name]
        except KeyError:
            raise NotATernBuild(f"{self.build_dir / MANIFEST_NAME}: the register map has no {name!r} "
                                f"register (has {', '.join(sorted(self.registers))})") from None

    @property
    def bitstream_path(self) -> Path | None:
        return self.build_dir / self.bitstream if self.bitstream else None


def _field(data: dict, path: str, kind, where: Path):
    """data[path] (dotted), checked to be of `kind` (int, list, str, dict), else NotATernBuild."""
    value = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise NotATernBuild(f"{where}: field {path!r} is missing: not a Tern build manifest")
        value = value[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise NotATernBuild(f"{where}: field {path!r} must be an integer, not {value!r}")
    for name, type_ in (("a list", list), ("a string", str), ("an object", dict)):
        if kind is type_ and not isinstance(value, type_):
            raise NotATernBuild(f"{where}: field {path!r} must be {name}, not {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_relative_file(name, field: str, where: Path) -> str:
    """A file name from the manifest, refused unless it is a plain relative path inside the
    build folder: a manifest must never point the driver or the simulator elsewhere."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        raise NotATernBuild(f"{where}: {field} must be a relative file name inside the build folder, "
                            f"not {_short(name)}")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise NotATernBuild(f"{where}: {field} must stay inside the build folder (relative, no '..'), "
                            f"not {name!r}")
    return name


def _registers(data: dict, where: Path) -> dict:
    """name -> offset of the register map, each entry checked (a string or a float for an
    offset would otherwise surface later as a confusing error on the bus)."""
    regs = _field(data, "registers.registers", list, where)
    out = {}
    for i, r in enumerate(regs):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) \
                or isinstance(r.get("offset"), bool) or not isinstance(r.get("offset"), int) \
                or not 0 <= r["offset"] < 1 << 32 or r["offset"] % 4:
            raise NotATernBuild(f"{where}: registers.registers[{i}] must be {{\"name\": string, \"offset\": "
                                f"word-aligned integer}}, not {_short(r)}")
        out[r["name"]] = r["offset"]
    counters = data["registers"].get("event_counters", [])
    if not isinstance(counters, list) or not all(
            isinstance(c, dict) and isinstance(c.get("layer"), str) and c.get("register") in out for c in counters):
        raise NotATernBuild(f"{where}: registers.event_counters must list {{\"layer\", \"register\"}} "
                            f"of registers in the map, not {_short(counters)}")
    return out


def _files(data: dict, where: Path) -> dict:
    """The manifest's file names (rtl, ir, tcl, bitstream, hwh), each inside the build folder."""
    files = _field(data, "files", dict, where)
    for key in ("rtl", "ir"):
        names = files.get(key)
        if not isinstance(names, list) or not names:
            raise NotATernBuild(f"{where}: files.{key} must be a non-empty list of file names, "
                                f"not {_short(names)}")
        for i, name in enumerate(names):
            check_relative_file(name, f"files.{key}[{i}]", where)
    for key in ("tcl", "bitstream", "hwh"):
        if files.get(key) is not None:
            check_relative_file(files[key], f"files.{key}", where)
    return files


def parse_manifest(data, where: Path | str = MANIFEST_NAME, build_dir: Path | None = None) -> BuildInfo:
    """Validate a manifest dict and return what the driver needs."""
    where = Path(where)
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise NotATernBuild(f"{where}: format must be {MANIFEST_FORMAT!r}, not {found!r}: not a Tern build")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in SUPPORTED_VERSIONS:
        raise NotATernBuild(f"{where}: manifest version must be one of {SUPPORTED_VERSIONS}, not {version!r}: "
                            f"update the host driver")
    shape = tuple(_field(data, "input.shape", list, where))
    if len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise NotATernBuild(f"{where}: input.shape must be [C, H, W] of positive integers, not {list(shape)!r}")
    dtype = data["input"].get("dtype", "uint8")
    if dtype != "uint8":
        raise NotATernBuild(f"{where}: input.dtype must be 'uint8', not {dtype!r}")
    registers = _registers(data, where)
    regmap_version = _field(data, "registers.version", int, where)
    if regmap_version not in REGMAP_VERSIONS:
        raise NotATernBuild(f"{where}: register map version must be one of {REGMAP_VERSIONS}, "
                            f"not {regmap_version!r}: update the host driver")
    files = _files(data, where)
    board = data.get("board") if isinstance(data.get("board"), dict) else {}
    info = BuildInfo(
        build_dir=Path(build_dir) if build_dir is not None else where.parent,
        model_name=str(_field(data, "model", dict, where).get("name", "?")),
        model_id=_field(data, "model.model_id", int, where),
        timesteps=_field(data, "timesteps", int, where),
        num_classes=_field(data, "classes", int, where),
        input_shape=shape,
        pixels_per_image=_field(data, "input.pixels_per_image", int, where),
        input_bytes=_field(data, "input.bytes_per_image", int, where),
        output_words=_field(data, "output.words_per_image", int, where),
        output_bytes=_field(data, "output.bytes_per_image", int, where),
        registers=registers,
        event_counters=tuple((c["layer"], c["register"]) for c in data["registers"].get("event_counters", [])),
        regmap_version=regmap_version,
        clock_mhz=board.get("clock_mhz") if isinstance(board.get("clock_mhz"), (int, float)) else None,
        bitstream=files.get("bitstream"),
        hwh=files.get("hwh"),
        raw=data,
    )
    _check_consistent(info, where)
    return info


def _check_consistent(info: BuildInfo, where: Path) -> None:
    if not 0 <= info.model_id < 1 << 32:
        raise NotATernBuild(f"{where}: model.model_id must be a 32-bit unsigned integer, not {info.model_id}")
    for name, value in (("timesteps", info.timesteps), ("classes", info.num_classes)):
        if value < 1:
            raise NotATernBuild(f"{where}: {name} must be an integer >= 1, not {value}")
    c, h, w = info.input_shape
    if info.pixels_per_image != c * h * w:
        raise NotATernBuild(f"{where}: input.pixels_per_image must be C*H*W = {c * h * w}, "
                            f"not {info.pixels_per_image}")
    if info.input_bytes < info.pixels_per_image or info.input_bytes % 8:
        raise NotATernBuild(f"{where}: input.bytes_per_image must be whole 64-bit beats holding "
                            f"{info.pixels_per_image} pixels, not {info.input_bytes}")
    if info.output_words < info.num_classes + 1 or info.output_bytes < 4 * (info.num_classes + 1) \
            or info.output_bytes % 8:
        raise NotATernBuild(f"{where}: output must hold {info.num_classes} logits and the class in whole "
                            f"64-bit beats, not {info.output_words} words in {info.output_bytes} bytes")
    for name in ("MAGIC", "MODEL_ID", "CONTROL", "IMAGES_IN", "IMAGES_OUT", "BUSY_CYCLES_LO",
                 "BUSY_CYCLES_HI", "ERRORS"):
        info.offset(name)


def load_manifest(build_dir) -> BuildInfo:
    """The BuildInfo of a build folder (or of a manifest.json path)."""
    path = Path(build_dir)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise NotATernBuild(f"build_dir must be a Tern build folder with {MANIFEST_NAME}, not {str(build_dir)!r}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotATernBuild(f"{path}: not readable JSON ({' '.join(str(exc).split())})") from None
    return parse_manifest(data, path, path.parent)
