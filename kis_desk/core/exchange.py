"""What the engine needs from an exchange it starts itself (the built-in simulator).

The engine never imports the simulator: a composition root (``kis_desk.wiring``) hands the
collector an ``EmbeddedExchange`` when the configuration asks for the built-in market, and the
collector only sees URLs, credentials and this small life cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..config import AppCredential

#: Where a stock's day stands when a run resumes: (YYYYMMDD, price, cum_volume, cum_value).
Resume = tuple[str, int, int, int]


@dataclass(frozen=True)
class ExchangeEndpoints:
    ws_url: str
    rest_url: str
    credentials: tuple[AppCredential, ...]
    rest_rate_per_second: float


class EmbeddedExchange(Protocol):
    """A KIS-compatible market the engine runs in-process (trades around the clock)."""

    async def start(self, codes: Sequence[str], resume: Mapping[str, Resume]) -> ExchangeEndpoints:
        """Start serving ``codes``, continuing each stock's day from ``resume``."""
        ...

    def add_code(self, code: str) -> None:
        """Start trading a symbol the watchlist gained."""
        ...

    async def stop(self) -> None:
        ...
