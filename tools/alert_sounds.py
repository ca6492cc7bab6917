"""Regenerate the bundled alert sounds: ``python -m tools.alert_sounds``.

``resources/alert-up.wav`` is a rising two-tone chime (E5 → A5), ``alert-down.wav`` a falling
one (A5 → E5): short (0.3 s), 16-bit mono 22.05 kHz PCM, a few KB each, written with the stdlib
``wave`` module only, so the committed files can be reproduced byte for byte on any machine.
Each note has a fast attack and an exponential decay (a bell, not a buzzer) and the file ends in
silence, so no player clicks at the end.
"""

from __future__ import annotations

import math
import struct
import sys
import wave
from pathlib import Path

RATE = 22_050
NOTE_SECONDS = 0.15
PEAK = 0.6              # of full scale: loud enough, with headroom for the overtone
E5, A5 = 659.25, 880.0
ROOT = Path(__file__).resolve().parent.parent / "resources"


def note(freq: float, seconds: float = NOTE_SECONDS, rate: int = RATE) -> list[float]:
    """One bell-like note: 5 ms attack, exponential decay, a soft octave overtone."""
    n = int(seconds * rate)
    attack = int(0.005 * rate)
    out = []
    for i in range(n):
        t = i / rate
        env = (i / attack if i < attack else 1.0) * math.exp(-t * 9.0) * min(1.0, (n - i) / (0.01 * rate))
        out.append(env * (0.8 * math.sin(2 * math.pi * freq * t) + 0.2 * math.sin(4 * math.pi * freq * t)))
    return out


def chime(freqs: tuple[float, ...]) -> bytes:
    samples = [s for f in freqs for s in note(f)]
    return b"".join(struct.pack("<h", round(max(-1.0, min(1.0, s * PEAK)) * 32767)) for s in samples)


def write(path: Path, frames: bytes, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


SOUNDS = {"alert-up.wav": (E5, A5), "alert-down.wav": (A5, E5)}


def main(out: Path = ROOT) -> int:
    for name, freqs in SOUNDS.items():
        write(out / name, chime(freqs))
        print(f"wrote {out / name} ({(out / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
