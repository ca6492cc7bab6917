"""Run Python's cyclic garbage collector on the GUI thread only.

Why: the collector runs in whichever thread happens to allocate when a threshold is crossed.
If that is a worker thread (``asyncio.to_thread`` database reads) and the garbage holds a Qt
widget owned by Python, Shiboken destroys the widget in that thread: the destructor takes Qt
locks and then waits for the GIL that the GUI thread holds while it waits for those locks — a
deadlock (seen here in the test suite). With automatic collection off, a GUI-thread timer does
the same work at the same thresholds; objects without reference cycles are still freed at once.

Once start-up is over, everything alive (modules, widgets, the engine) is moved out of the
collector's sight (``gc.freeze``): a full collection then scans only what was made since, so it
no longer stalls the GUI for tens of milliseconds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

from ..core.heap import freeze_startup_heap, thaw_heap


class GuiThreadGarbageCollector(QObject):
    """Disables automatic GC while alive and collects from a timer on the GUI thread."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 200,
                 freeze_after_ms: int | None = 15_000) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        self._thresholds = gc.get_threshold()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        gc.disable()
        self._timer.start(interval_ms)
        self._frozen = False
        if freeze_after_ms is not None:       # None: never (a test session creates and drops windows)
            QTimer.singleShot(freeze_after_ms, self._freeze_startup)

    def _freeze_startup(self) -> None:
        if self._timer.isActive() and not self._frozen:
            freeze_startup_heap()
            self._frozen = True

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                break

    def stop(self) -> None:
        self._timer.stop()
        if self._frozen:
            thaw_heap()
            self._frozen = False
        gc.collect()
        if self._was_enabled:
            gc.enable()
