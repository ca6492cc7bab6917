"""Optional compiled hot path; everything else is configured in pyproject.toml.

``kis_desk/core/_frame_ticks.pyx`` (frame → Ticks, see kis_desk/core/frame_ticks.py) is built
with Cython when a C compiler is there. ``optional=True``: a machine without one installs all
the same and runs the pure-Python path (same results, slower).
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:          # no Cython in the build environment: pure Python
    ext_modules = []
else:
    ext_modules = cythonize(
        [Extension("kis_desk.core._frame_ticks", ["kis_desk/core/_frame_ticks.pyx"], optional=True)],
        compiler_directives={"language_level": 3}, quiet=True)

setup(ext_modules=ext_modules)
