"""PySide6.QtGui, minus the Qt plugins a desktop app never loads (used instead of PyInstaller's hook).

Dropped: embedded-device platforms (eglfs, linuxfb, vnc, vkkhrdisplay, minimalegl) with their
input/EGL helpers, and the GTK3 platform theme, whose dependencies would bundle the build machine's
GTK stack (glib, cairo, pango, gdk-pixbuf, atk) that then mismatches the user's own GTK at run time.
Kept: xcb, wayland, offscreen, minimal; image formats; the ibus/compose input contexts (Hangul
input); the XDG desktop-portal theme (native file dialogs). Windows/macOS plugins are unaffected.
"""
import os

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

_DROP = {
    "platforms": ("qeglfs", "qlinuxfb", "qvnc", "qvkkhrdisplay", "qminimalegl"),
    "platformthemes": ("qgtk3",),
    "egldeviceintegrations": ("",),
    "generic": ("",),
}


def _keep(src: str) -> bool:
    parts = src.replace("\\", "/").split("/")
    if len(parts) < 3 or parts[-3] != "plugins":
        return True
    prefixes = _DROP.get(parts[-2])
    name = parts[-1].removeprefix("lib")
    return prefixes is None or not any(name.startswith(p) for p in prefixes)


hiddenimports, binaries, datas = add_qt6_dependencies(os.path.join(os.path.dirname(__file__), "hook-PySide6.QtGui.py"))
binaries = [(src, dest) for src, dest in binaries if _keep(src)]
