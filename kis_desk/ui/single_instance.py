"""One desktop app per profile: a second start asks the first to show its window, then exits.

Why: two apps on one profile would run two engines on the same app keys, and KIS allows one
WebSocket session per key (the second start would steal it: OPSP8996). The channel is a
QLocalServer (a named pipe on Windows, a Unix-domain socket elsewhere) named after a hash of the
profile's data directory. A file lock (filelock: flock / msvcrt) settles two starts at the same
moment, and since the OS drops it when its holder dies, a crashed instance's leftover socket is
simply removed by the next holder (``QLocalServer.removeServer``) instead of blocking start-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from filelock import FileLock, Timeout
from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

RAISE_REQUEST = b"raise\n"
RAISE_ACK = b"ok\n"
LOCK_NAME = "app-instance.lock"


class InstanceBusyError(RuntimeError):
    """The profile's lock is held, but its holder never answered (starting up or hung)."""


def server_name(profile_dir: Path) -> str:
    """Stable per profile directory, short enough for a Unix socket path, same on every start."""
    key = os.path.normcase(str(Path(profile_dir).resolve()))   # Windows paths ignore case
    return "kis-desk-" + hashlib.sha256(key.encode()).hexdigest()[:16]


class SingleInstance(QObject):
    """``acquire()`` once after the QApplication exists; ``activated`` fires on each later start."""

    activated = Signal()

    def __init__(self, profile_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.profile_dir = Path(profile_dir)
        self.name = server_name(self.profile_dir)
        self._lock = FileLock(self.profile_dir / LOCK_NAME, thread_local=False)
        self._server: QLocalServer | None = None

    def acquire(self, wait: float = 10.0) -> bool:
        """True: this process is the profile's instance and listens for raise requests.
        False: another instance runs and was asked to raise its window. Raises
        InstanceBusyError if the lock stays held by something that does not answer for ``wait`` s."""
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait
        while True:
            if self.notify_running():
                return False
            try:
                self._lock.acquire(timeout=0)
                break
            except Timeout:   # the other start holds it and is about to listen (or is hung)
                if time.monotonic() >= deadline:
                    raise InstanceBusyError(f"another kis-desk holds {self.profile_dir / LOCK_NAME} "
                                            "but does not answer") from None
                time.sleep(0.1)
        # Holding the lock: any server by this name is a crashed instance's leftover.
        QLocalServer.removeServer(self.name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)   # this user only
        if not server.listen(self.name):
            error = server.errorString()
            self._lock.release()
            raise OSError(f"cannot listen on local socket {self.name}: {error}")
        server.newConnection.connect(self._on_new_connection)
        self._server = server
        return True

    def notify_running(self, timeout_ms: int = 1000) -> bool:
        """Ask a running instance to raise its window; True if one accepted the connection."""
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(RAISE_REQUEST)
        sock.waitForBytesWritten(timeout_ms)
        # The acknowledgement only says the request arrived; a busy instance still counts as running.
        acked = sock.waitForReadyRead(3 * timeout_ms) and bytes(sock.readAll().data()).startswith(RAISE_ACK)
        if not acked:
            log.warning("the running kis-desk did not acknowledge the raise request")
        sock.disconnectFromServer()
        return True

    def release(self) -> None:
        """Stop listening and drop the lock (the next start becomes the instance)."""
        if self._server is not None:
            self._server.close()           # also removes the socket file on POSIX
            self._server.deleteLater()     # (its client sockets are its children)
            self._server = None
        if self._lock.is_locked:
            self._lock.release()

    # -- server side ------------------------------------------------------------------------------
    # Slots use sender() instead of lambdas holding the socket: no Python reference cycles around
    # Qt objects, which the cyclic GC could otherwise free on a worker thread (see gc_guard.py).
    def _on_new_connection(self) -> None:
        server = self._server
        while server is not None and server.hasPendingConnections():
            sock = server.nextPendingConnection()
            sock.readyRead.connect(self._on_ready_read)
            sock.disconnected.connect(sock.deleteLater)

    def _on_ready_read(self) -> None:
        sock = self.sender()
        if not isinstance(sock, QLocalSocket):
            return
        while sock.canReadLine():
            if bytes(sock.readLine().data()) == RAISE_REQUEST:
                sock.write(RAISE_ACK)
                sock.flush()
                log.info("another start of kis-desk for this profile: raising the window")
                self.activated.emit()


def bring_to_front(window) -> None:  # noqa: ANN001 - any QWidget
    """Un-minimise, raise and focus (Windows may only flash the taskbar button: its focus rule)."""
    from PySide6.QtCore import Qt

    window.setWindowState((window.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive)
    window.show()
    window.raise_()
    window.activateWindow()
