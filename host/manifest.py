"""The build's manifest.json as the driver reads it: `formats.manifest` is the one reader
(numpy-free, shipped to the board beside host/); this name is the driver's public API."""
from formats.manifest import (MANIFEST_FORMAT, MANIFEST_NAME, REGMAP_VERSIONS, SUPPORTED_VERSIONS, BuildInfo,
                              check_relative_file, load_manifest, parse_manifest)
from formats.regmap import MAGIC

__all__ = ["MAGIC", "MANIFEST_FORMAT", "MANIFEST_NAME", "REGMAP_VERSIONS", "SUPPORTED_VERSIONS", "BuildInfo",
           "check_relative_file", "load_manifest", "parse_manifest"]
