"""Simulator configuration (one frozen-ish dataclass; every knob has a demo-friendly default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .universe import DEFAULT_CODES


@dataclass(frozen=True)
class JumpSpec:
    """Move ``code``'s price by ``pct`` percent over ``over_seconds``, starting ``after_seconds``
    after the simulator starts (so alerts can be exercised)."""

    code: str
    pct: float
    over_seconds: float = 20.0
    after_seconds: float = 0.0


@dataclass(frozen=True)
class SpikeSpec:
    """News-like spikes: now and then one symbol moves ``pct`` (random sign) over ``over``
    seconds, then gives back ``retrace`` of the move over ``retrace_over`` seconds after a pause
    of ``pause``. Each pair is a (low, high) range drawn uniformly from a seeded RNG. The first
    spike comes ``first_after`` seconds after start, the next ones ``every`` seconds apart."""

    first_after: tuple[float, float] = (60.0, 90.0)
    every: tuple[float, float] = (150.0, 300.0)
    pct: tuple[float, float] = (5.5, 9.0)
    over: tuple[float, float] = (10.0, 40.0)
    pause: tuple[float, float] = (5.0, 30.0)
    retrace: tuple[float, float] = (0.3, 0.6)
    retrace_over: tuple[float, float] = (60.0, 180.0)
    #: a symbol already this far (percent) from its previous close spikes back towards it
    turn_back_beyond_pct: float = 12.0


#: what the demo paths (``kis-desk sim``, the app's demo mode) use
DEMO_SPIKES = SpikeSpec()


@dataclass
class SimConfig:
    """Everything the simulator can be told. Ports 0 = ephemeral."""

    host: str = "127.0.0.1"
    ws_port: int = 0
    rest_port: int = 0
    #: symbols that trade from the start (any code ever subscribed or queried joins them)
    codes: Sequence[str] = DEFAULT_CODES
    #: trades per second across all symbols
    rate: float = 200.0
    seed: int = 1
    #: "real" (REST 20 req/s per app key) or "mock" (2 req/s)
    mode: str = "real"
    #: accepted app key -> secret; None accepts any non-empty key and secret
    app_keys: dict[str, str] | None = None
    #: app keys refused as wrong (EGW00103) while every other key works (failover tests)
    rejected_app_keys: frozenset[str] = frozenset()
    #: True: trade at any wall-clock time; False: only 09:00–15:30 KST on weekdays
    always_open: bool = True
    #: returns the current KST datetime (tests may fake the market clock)
    clock: Callable[[], datetime] | None = None
    #: scheduler tick of the trade generator (trades of one symbol within a tick share a frame)
    tick_interval: float = 0.01
    #: price volatility in percent per sqrt(hour)
    volatility_pct: float = 1.5
    jumps: Sequence[JumpSpec] = ()
    #: spontaneous news-like spikes (None = off: a simulator built in code moves only when told,
    #: so tests count alerts exactly; the demo paths pass :data:`DEMO_SPIKES`)
    spikes: SpikeSpec | None = None
    #: trailing fields appended to every H0STCNT0 record, e.g. ("2",) for the 47-field variant
    extra_fields: tuple[str, ...] = ()
    max_records_per_frame: int = 30
    #: registrations per WebSocket session (the 42nd gets OPSP0008)
    max_subscriptions: int = 41
    #: seconds without server→client traffic before a PINGPONG
    ping_interval: float = 30.0
    #: seconds to wait for the PINGPONG answer before aborting the TCP connection
    pong_timeout: float = 100.0
    #: frames queued per connection before it is dropped as too slow
    send_queue_limit: int = 20_000
    #: REST requests per second per app key; None = 20 (real) / 2 (mock)
    rest_rate_limit: float | None = None
    #: minimum seconds between two access-token issuances per app key (EGW00133); 0 = no limit
    token_min_interval: float = 60.0
    token_expires_in: int = 86_400
    #: rows per inquire-time-itemconclusion response
    page_size: int = 100
    #: rows per inquire-ccnl response
    ccnl_rows: int = 30
    #: trades kept per symbol (oldest trimmed beyond); None = the whole day
    history_limit: int | None = None
    #: seconds an app key stays "in use" after its session ended abruptly
    slot_hold_seconds: float = 0.0
    #: largest client→server WebSocket message accepted
    max_client_message: int = 65_536
    #: code -> (YYYYMMDD, last price, cumulative volume, cumulative value): continue a day that an
    #: earlier run already stored, so a restarted demo does not reuse (code, date, cum_volume).
    resume: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def effective_rest_rate(self) -> float:
        if self.rest_rate_limit is not None:
            return self.rest_rate_limit
        return 2.0 if self.mode == "mock" else 20.0


__all__ = ["DEMO_SPIKES", "JumpSpec", "SimConfig", "SpikeSpec"]
