"""Stored alerts: saved once per alert id, the day's and any past range's, acknowledged.

Why its own module: the alert history (the dock's day, the history window's ranges and
filters, acknowledging one or thousands in one transaction) is its own table and its own
rules, next to the trades. A mixin of :class:`~.repository.Repository` (its ``engine``);
blocking I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields as dataclass_fields
from datetime import date, datetime, timezone
from typing import Any, NamedTuple

import sqlalchemy as sa

from ...core.events import AlertEvent
from . import schema
from .schema import alerts


class StoredAlert(NamedTuple):
    alert: AlertEvent
    acknowledged: bool
    acknowledged_at: datetime | None


def _stored_alert(row: Any) -> StoredAlert:
    """A row of ``alerts`` → StoredAlert; every AlertEvent field the table has is carried over."""
    m = row._mapping
    values = {f.name: m[f.name] for f in dataclass_fields(AlertEvent) if f.name in m}
    return StoredAlert(AlertEvent(**values), bool(m["acknowledged"]), m["acknowledged_at"])


class AlertStore:
    """The alerts table (see the module docstring)."""

    def save_alert(self, alert: AlertEvent) -> bool:
        """Insert unless already stored (same alert_id). True when inserted."""
        values = {c: getattr(alert, c) for c in schema.ALERT_COLUMNS if c != "business_date"}
        values["business_date"] = schema.kst_date(alert.trigger_time)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(alerts.c.id).where(alerts.c.alert_id == alert.alert_id)).first():
                return False
            conn.execute(sa.insert(alerts).values(**values))
        return True

    def alerts_on(self, business_date: date) -> list[StoredAlert]:
        """The day's stored alerts, oldest first (:meth:`alerts_between` of that one day)."""
        return self.alerts_between(business_date, business_date)

    def alert_ids_on(self, business_date: date) -> list[str]:
        """Ids of the alerts stored for a day (the detector's seed after a restart)."""
        q = sa.select(alerts.c.alert_id).where(alerts.c.business_date == business_date)
        with self.engine.connect() as conn:
            return list(conn.scalars(q))

    def acknowledge(self, alert_id: str) -> bool:
        """Mark an alert as seen. False when no such alert or already acknowledged."""
        return self.acknowledge_many([alert_id]) > 0

    # -- alert history (any past day) ------------------------------------------------------------
    ACK_CHUNK = 500      # ids per UPDATE statement (SQLite's bound-variable limit), one transaction

    def alerts_between(self, start_date: date, end_date: date, codes: Sequence[str] | None = None,
                       direction: str | None = None) -> list[StoredAlert]:
        """Stored alerts with ``start_date <= business_date <= end_date``, oldest first.

        ``codes``: only these symbols (None = all; an empty list matches nothing);
        ``direction``: ``"up"`` / ``"down"`` / None for both.
        """
        q = sa.select(alerts).where(alerts.c.business_date >= start_date, alerts.c.business_date <= end_date)
        if codes is not None:
            q = q.where(alerts.c.stock_code.in_(list(dict.fromkeys(codes))))
        if direction is not None:
            if direction not in ("up", "down"):
                raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
            q = q.where(alerts.c.direction == direction)
        q = q.order_by(alerts.c.trigger_time, alerts.c.id)
        with self.engine.connect() as conn:
            return [_stored_alert(r) for r in conn.execute(q)]

    def acknowledge_many(self, alert_ids: Iterable[str]) -> int:
        """Acknowledge all ``alert_ids`` in ONE transaction (all or none); returns how many
        changed (unknown and already acknowledged ids count 0)."""
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            return 0
        now = datetime.now(timezone.utc)
        changed = 0
        with self.engine.begin() as conn:
            for i in range(0, len(ids), self.ACK_CHUNK):
                res = conn.execute(sa.update(alerts)
                                   .where(alerts.c.alert_id.in_(ids[i:i + self.ACK_CHUNK]),
                                          alerts.c.acknowledged == sa.false())
                                   .values(acknowledged=True, acknowledged_at=now))
                changed += res.rowcount
        return changed


__all__ = ["AlertStore", "StoredAlert"]
