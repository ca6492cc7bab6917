"""Storage: every trade stored exactly once (TickWriter), read side and CRUD (Repository).

SQLite (default, ``UserPaths.default_database_url``) or PostgreSQL (``postgresql+psycopg://…``).
"""

from .journal import Journal, JournalLockedError
from .alert_store import StoredAlert
from .repository import Repository, SecretSettingError, StorageInfo, create_engine
from .schema import LATEST_VERSION, MIGRATIONS, current_version, migrate
from .stats import WriterStats
from .writer import TickWriter

__all__ = [
    "Journal", "JournalLockedError", "LATEST_VERSION", "MIGRATIONS", "Repository",
    "SecretSettingError", "StorageInfo", "StoredAlert", "TickWriter", "WriterStats", "create_engine", "current_version", "migrate",
]
