"""The register map, for the compiler's stages: `formats.regmap` is its one definition (numpy-free,
so that the host driver and the hardware read the same offsets, bits and magic number)."""
from formats.regmap import (ACCESS_KINDS, ADDR_WIDTH, CONTROL_BITS, ERROR_BITS, FIRST_EVENT_COUNTER, MAGIC,
                            REGMAP_VERSION, STATUS_BITS, Register, RegisterMap, register_map, registers_for_hw)

__all__ = ["ACCESS_KINDS", "ADDR_WIDTH", "CONTROL_BITS", "ERROR_BITS", "FIRST_EVENT_COUNTER", "MAGIC",
           "REGMAP_VERSION", "STATUS_BITS", "Register", "RegisterMap", "register_map", "registers_for_hw"]
