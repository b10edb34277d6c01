"""Read a build folder's manifest.json: the only thing the host knows about a build.

`load_manifest(build_dir)` returns a `BuildInfo`: shapes, T, classes, the packing of input
and output beats, the register offsets by name and the model ID. Nothing else of the build
(no gen, no IR) is read, so the driver runs on a board with numpy alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import NotATernBuild

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "tern-build"
SUPPORTED_VERSIONS = (1,)
REGMAP_VERSIONS = (1,)
MAGIC = 0x5445524E  # "TERN": what the IP's MAGIC register reads


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
    value = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise NotATernBuild(f"{where}: field {path!r} is missing: not a Tern build manifest")
        value = value[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise NotATernBuild(f"{where}: field {path!r} must be an integer, not {value!r}")
    if kind is list and not isinstance(value, list):
        raise NotATernBuild(f"{where}: field {path!r} must be a list, not {value!r}")
    return value


def parse_manifest(data, where: Path | str = MANIFEST_NAME, build_dir: Path | None = None) -> BuildInfo:
    """Validate a manifest dict and return what the driver needs."""
    where = Path(where)
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise NotATernBuild(f"{where}: format must be {MANIFEST_FORMAT!r}, not {found!r}: not a Tern build")
    version = data.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise NotATernBuild(f"{where}: manifest version must be one of {SUPPORTED_VERSIONS}, not {version!r}: "
                            f"update the host driver")
    shape = tuple(_field(data, "input.shape", list, where))
    if len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise NotATernBuild(f"{where}: input.shape must be [C, H, W] of positive integers, not {list(shape)!r}")
    dtype = data["input"].get("dtype", "uint8")
    if dtype != "uint8":
        raise NotATernBuild(f"{where}: input.dtype must be 'uint8', not {dtype!r}")
    regs = _field(data, "registers.registers", list, where)
    regmap_version = _field(data, "registers.version", int, where)
    if regmap_version not in REGMAP_VERSIONS:
        raise NotATernBuild(f"{where}: register map version must be one of {REGMAP_VERSIONS}, "
                            f"not {regmap_version!r}: update the host driver")
    files = data.get("files", {})
    board = data.get("board", {})
    info = BuildInfo(
        build_dir=Path(build_dir) if build_dir is not None else where.parent,
        model_name=str(data.get("model", {}).get("name", "?")),
        model_id=_field(data, "model.model_id", int, where),
        timesteps=_field(data, "timesteps", int, where),
        num_classes=_field(data, "classes", int, where),
        input_shape=shape,
        pixels_per_image=_field(data, "input.pixels_per_image", int, where),
        input_bytes=_field(data, "input.bytes_per_image", int, where),
        output_words=_field(data, "output.words_per_image", int, where),
        output_bytes=_field(data, "output.bytes_per_image", int, where),
        registers={r["name"]: int(r["offset"]) for r in regs},
        event_counters=tuple((c["layer"], c["register"]) for c in data["registers"].get("event_counters", [])),
        regmap_version=regmap_version,
        clock_mhz=board.get("clock_mhz"),
        bitstream=files.get("bitstream"),
        hwh=files.get("hwh"),
        raw=data,
    )
    _check_consistent(info, where)
    return info


def _check_consistent(info: BuildInfo, where: Path) -> None:
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
        raise NotATernBuild(f"{path}: not readable JSON ({exc})") from None
    return parse_manifest(data, path, path.parent)
