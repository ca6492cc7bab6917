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
    #: the first spike's size and duration: ≈0.2 %/s stays inside the dynamic VI band (3 % within
    #: 10 s), so a newcomer sees its alert within two minutes instead of waiting out a VI; the
    #: later, faster ones may trigger VI (None = like the others)
    first_pct: tuple[float, float] | None = (5.5, 6.5)
    first_over: tuple[float, float] | None = (28.0, 32.0)


#: what the demo paths (``kis-desk sim``, the app's demo mode) use
DEMO_SPIKES = SpikeSpec()


@dataclass(frozen=True)
class ViSpec:
    """Volatility interruption (변동성완화장치) as KRX runs it [C: KRX rules, general market
    knowledge — kis-protocol.md documents only the record fields]: a trade that would print
    ``static_pct`` or more away from the static reference (the day's first print, then the last
    VI auction price) triggers a *static* VI; one ``dynamic_pct`` (KOSPI200 names; others
    ``dynamic_pct_other``) away from a trade of the last ``dynamic_window`` seconds triggers a
    *dynamic* VI. KRX compares with the immediately preceding trade; the simulator moves price
    tick by tick, so it compares with the window instead. The symbol then trades nowhere for
    ``seconds`` plus a random end of up to ``random_end`` seconds (임의종료), prints ONE auction
    trade and resumes continuous trading. Tests compress ``seconds``."""

    static_pct: float = 10.0
    dynamic_pct: float = 3.0
    dynamic_pct_other: float = 6.0
    dynamic_window: float = 10.0
    seconds: float = 120.0
    random_end: float = 30.0


#: the demo paths' VI (off in simulators built in code, like spikes)
DEMO_VI = ViSpec()


@dataclass(frozen=True)
class HaltSpec:
    """Halt ``code`` (거래정지) ``after_seconds`` after start for ``seconds`` (None = until resumed)."""

    code: str
    after_seconds: float = 0.0
    seconds: float | None = 60.0


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
    #: True: trade at any wall-clock time (both venues continuous); False: follow the session
    #: table (``kis_desk.market.calendar.phase_at(now, venue)``): KRX auctions as single prints,
    #: NXT-only trading in its pre-market (08:00–08:50) and after-market (15:30–20:00)
    always_open: bool = True
    #: NXT-eligible symbols (the directory's NXT flag, else the large caps of the built-in
    #: table) trade on Nextrade too (H0NXCNT0 / NX; H0UNCNT0 / UN carries both venues). Off in
    #: simulators built in code so KRX-only tests count exactly; on in the demo paths.
    nxt: bool = False
    #: share of an eligible symbol's trades that print on NXT while both venues trade
    nxt_share: float = 0.2
    #: trade rate while only NXT trades (its pre/after market), as a fraction of ``rate``
    nxt_only_activity: float = 0.25
    #: VI auctions on large moves (None = off; the demo paths pass :data:`DEMO_VI`)
    vi: ViSpec | None = None
    #: scripted trading halts
    halts: Sequence[HaltSpec] = ()
    #: a code first subscribed or queried that no symbol list knows
    #: (``kis_desk.market.symbols.default_directory().knows``) gets an invented market only when
    #: True; codes in ``codes``, ``resume`` and ``Simulator.add_code`` always trade
    invent_unknown_codes: bool = False
    #: returns the current KST datetime (tests may fake the market clock)
    clock: Callable[[], datetime] | None = None
    #: scheduler tick of the trade generator (trades of one symbol within a tick share a frame).
    #: The trade rate does not depend on it (Poisson with mean rate × tick per step); what it sets
    #: is how often the loop wakes. Each wake-up costs the whole process ~100–150 µs of CPU
    #: (loop iteration, sender, client read, decode: one round per step), so 10 ms steps made
    #: the simulator cost more than the trades themselves (docs/benchmarks.md, "headless demo").
    tick_interval: float = 0.1
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


__all__ = ["DEMO_SPIKES", "DEMO_VI", "HaltSpec", "JumpSpec", "SimConfig", "SpikeSpec", "ViSpec"]
