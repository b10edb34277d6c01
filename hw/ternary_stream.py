"""The dense ternary spike-map stream between dense engines (docs/hardware.md, "Dense streaming").

One beat carries one position (y, x) of a [C,H,W] spike map: all C channels, 2 bits each
(`ternary_code`), channel c in bits [2c, 2c+2). Beats come in (t, y, x) order, one map of
H·W beats per timestep, T maps per image, images back to back. `eos` marks the last beat
of a step (position H·W − 1) and `eoi` the last beat of an image (also `eos`). The markers
are redundant for an engine that knows its geometry (the dense engines count positions
themselves); the converters to events use them.

A 2-bit code is (fire, neg) as the LIF unit writes it: 00 = 0, 01 = +1, 11 = −1
(10 never occurs; a reader treats it as 0). A binary map never sets neg.
"""
from __future__ import annotations

from amaranth.lib import data, stream

from hw.lif import check_int

SPIKE_LAYOUT = data.StructLayout({"fire": 1, "neg": 1})


def ternary_code(value: int) -> int:
    """A spike in {−1, 0, +1} as its 2-bit code (fire | neg << 1)."""
    return {0: 0, 1: 1, -1: 3}[int(value)]


def code_value(code: int) -> int:
    """The spike a 2-bit code stands for (10 reads as 0)."""
    return {0: 0, 1: 1, 2: 0, 3: -1}[int(code) & 3]


def map_layout(channels: int) -> data.StructLayout:
    """One beat: the C channels of one position, and the end-of-step / end-of-image marks."""
    check_int("channels", channels, 1)
    return data.StructLayout({"spikes": data.ArrayLayout(SPIKE_LAYOUT, channels), "eos": 1, "eoi": 1})


def map_signature(channels: int) -> stream.Signature:
    return stream.Signature(map_layout(channels))


def beat_word(spikes, eos: int = 0, eoi: int = 0) -> int:
    """The payload integer of one beat (spikes: the C values in {−1,0,+1}), for testbenches."""
    word = 0
    for c, s in enumerate(spikes):
        word |= ternary_code(s) << (2 * c)
    channels = len(spikes)
    return word | (eos << (2 * channels)) | (eoi << (2 * channels + 1))


def word_beat(word: int, channels: int) -> tuple[list[int], int, int]:
    """(spikes, eos, eoi) of one beat's payload integer."""
    spikes = [code_value(word >> (2 * c)) for c in range(channels)]
    return spikes, (word >> (2 * channels)) & 1, (word >> (2 * channels + 1)) & 1


def map_beats(spike_maps) -> list[int]:
    """The beats of one image: spike_maps int [T, C, H, W] (or [T, C] for a vector, H = W = 1)."""
    import numpy as np
    maps = np.asarray(spike_maps)
    if maps.ndim == 2:
        maps = maps[:, :, None, None]
    steps, _, height, width = maps.shape
    words = []
    for t in range(steps):
        for y in range(height):
            for x in range(width):
                last = y == height - 1 and x == width - 1
                words.append(beat_word(maps[t, :, y, x].tolist(), int(last), int(last and t == steps - 1)))
    return words


__all__ = ["SPIKE_LAYOUT", "beat_word", "code_value", "map_beats", "map_layout", "map_signature",
           "ternary_code", "word_beat"]
