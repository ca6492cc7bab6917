"""Alert sounds: the bundled WAVs, the backend chain, playing without blocking, the fallback.

No test needs an audio device: ALSA's ``file`` PCM (a ~/.asoundrc in a temporary HOME) gives
``aplay`` a real device that writes into a FIFO the test reads, and a sound card that is not
there is the real "cannot play" case for the fallback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from kis_desk.ui.alert_sound import (
    BEEP, AlertSounds, CommandBackend, Playsound3Backend, available_backends, scaled_wav, sound_file,
)

ROOT = Path(__file__).resolve().parent.parent


def samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float), w.getframerate()


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("direction", ["up", "down"])
def test_bundled_wav_is_short_loud_and_small(direction):
    path = sound_file(direction)
    x, rate = samples(path)
    assert 0.2 <= len(x) / rate <= 0.5
    assert path.stat().st_size < 20_000
    assert np.sqrt(np.mean((x / 32768) ** 2)) > 0.05          # not silent
    assert np.max(np.abs(x)) < 32767                           # not clipped
    assert np.max(np.abs(x[-5:])) < 200                        # fades out (no click at the end)


def test_up_rises_and_down_falls():
    for direction, rising in (("up", True), ("down", False)):
        x, rate = samples(sound_file(direction))
        half = len(x) // 2
        first, second = dominant_hz(x[:half], rate), dominant_hz(x[half:], rate)
        assert (second > first * 1.2) if rising else (first > second * 1.2), (direction, first, second)


def test_the_generator_reproduces_the_committed_files(tmp_path):
    from tools.alert_sounds import main

    assert main(tmp_path) == 0
    for name in ("alert-up.wav", "alert-down.wav"):
        assert (tmp_path / name).read_bytes() == (ROOT / "resources" / name).read_bytes()


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (apt-get install sox)")
@pytest.mark.parametrize("direction", ["up", "down"])
def test_sox_reads_a_valid_non_silent_wav(direction, tmp_path):
    path = sound_file(direction)
    duration = float(subprocess.run(["sox", "--i", "-D", str(path)], capture_output=True, text=True,
                                    check=True).stdout)
    assert 0.25 <= duration <= 0.35
    stat = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True).stderr
    rms = float(next(line for line in stat.splitlines() if line.startswith("RMS     amplitude")).split(":")[1])
    assert rms > 0.05
    # the same check tells a silent file from a voiced one: espeak-ng as a known-good reference
    if shutil.which("espeak-ng"):
        speech = tmp_path / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(speech), "test"], check=True)
        silent = tmp_path / "silent.wav"
        subprocess.run(["sox", str(speech), str(silent), "vol", "0"], check=True)
        level = {}
        for f in (speech, silent):
            out = subprocess.run(["sox", str(f), "-n", "stat"], capture_output=True, text=True).stderr
            level[f] = float(next(ln for ln in out.splitlines() if ln.startswith("RMS     amplitude")).split(":")[1])
        assert level[speech] > 0.01 and level[silent] < 0.001


def test_volume_scales_the_samples(tmp_path):
    src = sound_file("up")
    x, _ = samples(src)
    half = scaled_wav(src, 50, tmp_path)
    assert half is not None and half.parent == tmp_path
    y, _ = samples(half)
    assert np.allclose(y, np.round(x * 0.5), atol=1)
    assert scaled_wav(src, 50, tmp_path) == half              # cached
    assert scaled_wav(src, 100, tmp_path) == src
    assert scaled_wav(src, 0, tmp_path) is None


def test_backend_chain_on_this_machine():
    """Linux: playsound3's backends (if any) come before pw-play/paplay/aplay; Windows: winsound first."""
    names = [b.name for b in available_backends()]
    if sys.platform.startswith("linux"):
        import playsound3

        cli = [n for n in ("pw-play", "paplay", "aplay") if shutil.which(n)]
        assert names == [f"playsound3:{b}" for b in playsound3.AVAILABLE_BACKENDS] + cli
    assert [b.name for b in available_backends("win32")][:1] == ["winsound"]


@pytest.mark.skipif(shutil.which("aplay") is None, reason="aplay not installed (apt-get install alsa-utils)")
def test_play_returns_while_the_player_is_still_playing(qtbot, monkeypatch, tmp_path):
    """A real player whose device is a FIFO nobody reads yet: aplay is stuck writing the
    samples, and play() has returned anyway — so playing never waits on the device. Reading the
    FIFO then receives the chime's samples and the player finishes cleanly."""
    home = tmp_path / "home"
    home.mkdir()
    fifo = tmp_path / "pcm.fifo"
    os.mkfifo(fifo)
    (home / ".asoundrc").write_text(
        f'pcm.!default {{ type file slave.pcm "null" file "{fifo}" format "raw" }}\n')
    monkeypatch.setenv("HOME", str(home))
    beeps = []
    sounds = AlertSounds(volume=100, beep=lambda: beeps.append(1),
                         backends=[CommandBackend("aplay", ("aplay", "--quiet"))])
    assert sounds.play("up") == "aplay"
    assert sounds.busy == 1                       # blocked on the device, not on us
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    qtbot.waitUntil(lambda: (sounds.reap(), sounds.busy == 0)[1], timeout=10_000)
    reader.join(10)
    with wave.open(str(sound_file("up")), "rb") as w:
        frames = w.readframes(w.getnframes())
    assert got and got[0][:len(frames)] == frames  # exactly the chime's samples reached the device
    assert beeps == [] and sounds.backend_name == "aplay"


@pytest.mark.skipif(shutil.which("aplay") is None, reason="aplay not installed (apt-get install alsa-utils)")
def test_a_player_without_a_device_falls_back_to_beep(qtbot, monkeypatch, tmp_path, caplog):
    """No sound card here: aplay exits with an error → the backend is dropped, the alert beeps."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text("pcm.!default { type hw card 7 }\n")   # a card that is not there
    monkeypatch.setenv("HOME", str(home))
    beeps = []
    sounds = AlertSounds(volume=60, beep=lambda: beeps.append(1),
                         backends=[CommandBackend("aplay", ("aplay", "--quiet"))])
    with caplog.at_level("INFO", logger="kis_desk.ui.alert_sound"):
        assert sounds.play("down") == "aplay"
        qtbot.waitUntil(lambda: (sounds.reap(), bool(beeps))[1], timeout=5000)
        assert sounds.backend_name == BEEP
        assert sounds.play("up") == BEEP
    assert beeps == [1, 1]
    assert any("cannot play here" in r.message for r in caplog.records)
    assert sum("alert sound backend: aplay" in r.message for r in caplog.records) == 1


def test_nothing_to_play_with_beeps_and_says_so_once(caplog):
    beeps = []
    sounds = AlertSounds(beep=lambda: beeps.append(1), backends=[])
    with caplog.at_level("INFO", logger="kis_desk.ui.alert_sound"):
        assert [sounds.play("up"), sounds.play("down")] == [BEEP, BEEP]
    assert beeps == [1, 1]
    assert sum(r.message == "alert sound backend: beep" for r in caplog.records) == 1


def test_a_backend_that_raises_is_skipped(monkeypatch):
    beeps = []
    broken = Playsound3Backend("gstreamer")       # not installed here: playsound3 refuses it
    monkeypatch.setattr(broken, "play", lambda path: (_ for _ in ()).throw(OSError("no gst")))
    sounds = AlertSounds(beep=lambda: beeps.append(1), backends=[broken])
    assert sounds.play("up") == BEEP and beeps == [1]


def test_volume_zero_is_silent():
    beeps = []
    sounds = AlertSounds(volume=0, beep=lambda: beeps.append(1), backends=[])
    assert sounds.play("up") == "muted" and beeps == []


def test_background_probe_finds_the_same_backends():
    sounds = AlertSounds(beep=lambda: None)
    sounds.probe_in_background()
    sounds.wait_for_probe(30)
    expected = available_backends()
    assert sounds.backend_name == (expected[0].name if expected else BEEP)
