"""Optional compiled hot path; everything else is configured in pyproject.toml.

``kis_desk/core/_frame_ticks.pyx`` (frame → Ticks, see kis_desk/core/frame_ticks.py) and
``kis_desk/engine/_detector_step.pyx`` (the move detector's per-trade step, see
kis_desk/engine/detector_kernel.py) and ``kis_desk/engine/storage/_trade_values.pyx`` (the SQLite
writer's rows, see sqlite_backend.py) and ``kis_desk/engine/storage/_trade_insert.pyx`` (its
INSERT binding without the GIL, see raw_sqlite.py) are built with Cython when a C compiler is there. Without Cython or a working compiler the install goes
on without it (a warning says so) and the pure-Python path runs: same results, slower.
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that never fails the install: a failed extension is left out."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, no headers, …
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._skip(exc, ext.name)

    @staticmethod
    def _skip(exc: BaseException, name: str = "the compiled extensions") -> None:
        print(f"WARNING: not building {name} ({exc}); kis-desk runs its pure-Python path",
              file=sys.stderr)


def _extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:          # no Cython in the build environment: pure Python
        return []
    try:
        return cythonize(
            [Extension("kis_desk.core._frame_ticks", ["kis_desk/core/_frame_ticks.pyx"]),
             Extension("kis_desk.engine._detector_step", ["kis_desk/engine/_detector_step.pyx"]),
             Extension("kis_desk.engine.storage._trade_values",
                       ["kis_desk/engine/storage/_trade_values.pyx"]),
             Extension("kis_desk.engine.storage._trade_insert",
                       ["kis_desk/engine/storage/_trade_insert.pyx"])],
            compiler_directives={"language_level": 3}, quiet=True)
    except Exception as exc:  # noqa: BLE001 - a Cython that cannot translate it: pure Python
        OptionalBuildExt._skip(exc)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
