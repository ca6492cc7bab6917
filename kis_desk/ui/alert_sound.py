"""Distinct up/down alert sounds that really play on Linux, Windows and macOS.

Why not ``QApplication.beep()``: it is silent on many Linux desktops (no bell configured, or
Wayland) and it cannot tell up from down. We bundle two short WAVs (``resources/alert-up.wav``,
``alert-down.wav``, made by ``tools/alert_sounds.py``) and play them through the first backend
that works here:

1. **Windows: stdlib** ``winsound`` (``SND_ASYNC``): no dependency, no process, never blocks.
2. **playsound3** (pure Python, MIT, maintained): macOS through ``afplay``/AppKit, Linux through
   GStreamer or ffplay, Windows through winmm when ``winsound`` failed. Chosen over
   PySide6-Addons' ``QSoundEffect`` (a ~200 MB wheel that must match the Essentials version),
   simpleaudio (unmaintained since 2019, no wheels for current Pythons) and ``pygame.mixer``
   (a game engine and SDL for two chimes). Its import probes the system with subprocesses, so
   it is imported in a worker thread, never on the GUI thread.
3. **Linux sound-server tools** as a subprocess: ``pw-play`` (PipeWire), ``paplay``
   (PulseAudio, also PipeWire's pulse layer), ``aplay`` (bare ALSA). playsound3's own ALSA
   backend also requires ``mpg123``, and it has no PipeWire/PulseAudio one.
4. ``QApplication.beep()`` when nothing above can play.

Every backend plays asynchronously (``SND_ASYNC``, a child process); a child that exits with an
error (no device, no sound server) marks its backend broken, logs it once, and the next alert
goes to the next backend (this one beeps instead). The backend in use is logged once.

Volume: none of these backends takes a portable volume, so the chosen volume is applied to the
samples (16-bit PCM scaled by ``volume/100``) and the scaled copy is cached in a temporary
folder; volume 0 plays nothing.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import wave
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

SOUND_FILES = {"up": "alert-up.wav", "down": "alert-down.wav"}
BEEP = "beep"
LINUX_PLAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pw-play", ("pw-play",)),
    ("paplay", ("paplay",)),
    ("aplay", ("aplay", "--quiet")),
)


def sound_file(direction: str) -> Path:
    """The bundled WAV for ``"up"`` / ``"down"``."""
    from ..paths import resource

    return resource(SOUND_FILES["down" if direction == "down" else "up"])


def scaled_wav(source: Path, volume: int, folder: Path) -> Path | None:
    """``source`` with its samples scaled to ``volume`` % (cached in ``folder``); None at 0 %."""
    volume = max(0, min(100, int(volume)))
    if volume == 0:
        return None
    if volume == 100:
        return source
    target = folder / f"{source.stem}-{volume}.wav"
    if target.is_file():
        return target
    with wave.open(str(source), "rb") as r:
        params = r.getparams()
        frames = r.readframes(r.getnframes())
    if params.sampwidth != 2:
        raise ValueError(f"{source.name}: only 16-bit PCM is supported")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) * (volume / 100.0)
    tmp = target.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setparams(params)
        w.writeframes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())
    tmp.replace(target)
    return target


class Playback(Protocol):
    """A sound being played: ``poll()`` is None while it runs, then its exit status."""

    def poll(self) -> int | None: ...


class Done:
    """A playback that was handed off completely (``winsound`` has no status to ask)."""

    def poll(self) -> int | None:
        return 0


class Backend(Protocol):
    name: str

    def play(self, path: Path) -> Playback: ...


@dataclass
class CommandBackend:
    """A command-line player run as a child process (never waited for on the caller's thread)."""

    name: str
    argv: Sequence[str]

    def play(self, path: Path) -> Playback:
        return subprocess.Popen([*self.argv, str(path)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class WinsoundBackend:
    name: str = "winsound"

    def play(self, path: Path) -> Playback:
        import winsound  # type: ignore[import-not-found]  # Windows only

        winsound.PlaySound(str(path), winsound.SND_FILENAME | winsound.SND_ASYNC | winsound.SND_NODEFAULT)
        return Done()


@dataclass
class Playsound3Backend:
    """playsound3 with one of its backends (``gstreamer``, ``afplay``, ``winmm`` …)."""

    backend: str
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"playsound3:{self.backend}"

    def play(self, path: Path) -> Playback:
        import playsound3

        sound = playsound3.playsound(path, block=False, backend=self.backend)
        return sound.subprocess


def available_backends(platform: str = sys.platform) -> list[Backend]:
    """Backends usable on this machine, best first. Blocking (probes): worker thread only."""
    found: list[Backend] = []
    if platform == "win32":
        found.append(WinsoundBackend())
    try:
        # its import warns "No supported audio backends" on most Linux desktops; we log our own line
        logging.getLogger("playsound3").setLevel(logging.ERROR)
        import playsound3

        found += [Playsound3Backend(b) for b in playsound3.AVAILABLE_BACKENDS]
    except Exception as exc:   # a broken probe must not cost the alert its sound
        log.info("playsound3 unavailable: %s", exc)
    if platform.startswith("linux"):
        found += [CommandBackend(name, argv) for name, argv in LINUX_PLAYERS if shutil.which(argv[0])]
    return found


class AlertSounds:
    """Plays the up/down chime on the best working backend, or beeps.

    Call :meth:`play` on the GUI thread; it only starts a playback (or a beep) and returns the
    name of what it used. :meth:`reap` (called by ``play`` and by the owner's timer) collects
    finished playbacks and demotes a backend whose player failed.
    """

    def __init__(self, volume: int = 80, beep: Callable[[], None] | None = None,
                 backends: Sequence[Backend] | None = None) -> None:
        self.volume = volume
        self._beep = beep or _qt_beep
        self._backends: list[Backend] | None = list(backends) if backends is not None else None
        self._probe_thread: threading.Thread | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="kis-desk-sounds-"))   # volume-scaled copies
        weakref.finalize(self, shutil.rmtree, self._folder, True)
        self._running: list[tuple[Backend, Playback]] = []
        self._announced = ""
        self.played: list[str] = []        # backend name per alert sound (tests, diagnostics)

    # -- backend choice -----------------------------------------------------------------------
    def probe_in_background(self) -> None:
        """Find the backends off the calling thread (playsound3's import runs subprocesses)."""
        if self._backends is None and self._probe_thread is None:
            self._probe_thread = threading.Thread(target=self._probe, name="alert-sound-probe", daemon=True)
            self._probe_thread.start()

    def _probe(self) -> None:
        self._backends = available_backends()
        self._announce(self.backend_name)

    def wait_for_probe(self, timeout: float | None = None) -> None:
        """Block until the background probe is done (tests, or a caller already off the GUI)."""
        if self._backends is None and self._probe_thread is None:
            self._probe()
        elif self._probe_thread is not None:
            self._probe_thread.join(timeout)

    @property
    def backend_name(self) -> str:
        """What the next alert will use: a backend name, ``beep``, or ``probing``."""
        if self._backends is None:
            return "probing"
        return self._backends[0].name if self._backends else BEEP

    # -- playing ------------------------------------------------------------------------------
    def play(self, direction: str) -> str:
        self.reap()
        path = scaled_wav(sound_file(direction), self.volume, self._folder)
        if path is None:
            return "muted"
        while self._backends:
            backend = self._backends[0]
            try:
                playback = backend.play(path)
            except Exception as exc:
                self._demote(backend, f"{type(exc).__name__}: {exc}")
                continue
            self._running.append((backend, playback))
            self._announce(backend.name)
            self.played.append(backend.name)
            return backend.name
        self._announce(BEEP if self._backends is not None else "probing (beep)")
        self._beep()
        self.played.append(BEEP)
        return BEEP

    def reap(self) -> None:
        """Forget finished playbacks; a player that failed demotes its backend and beeps once."""
        still: list[tuple[Backend, Playback]] = []
        for backend, playback in self._running:
            status = playback.poll()
            if status is None:
                still.append((backend, playback))
            elif status != 0 and self._backends and backend in self._backends:
                self._demote(backend, f"player exited with status {status}")
                self._beep()
        self._running = still

    @property
    def busy(self) -> int:
        return sum(1 for _, p in self._running if p.poll() is None)

    def _demote(self, backend: Backend, why: str) -> None:
        if self._backends and backend in self._backends:
            self._backends.remove(backend)
            log.warning("alert sound: %s cannot play here (%s); next: %s", backend.name, why,
                        self.backend_name)

    def _announce(self, name: str) -> None:
        if name != self._announced:
            self._announced = name
            log.info("alert sound backend: %s", name)

def _qt_beep() -> None:
    from PySide6.QtWidgets import QApplication

    QApplication.beep()


__all__ = ["AlertSounds", "BEEP", "CommandBackend", "Playsound3Backend", "WinsoundBackend",
                      "available_backends", "scaled_wav", "sound_file"]
