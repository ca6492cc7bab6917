"""What the collector's feed is built with: the environment (the built-in simulator, KIS mock /
real, or a KIS-compatible server at explicit URLs), its app keys, its venue and the calendar
hooks that follow the venue streamed.

A mixin of :class:`~kis_desk.engine.collector.Collector`, kept apart from its life cycle and
hot path because choosing endpoints and credentials (and refusing a configuration with a
user-facing reason) is its own job, shared by ``start`` and the live settings.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ..config import (
    ENVIRONMENTS, AppCredential, Secret, credentials_from_env, custom_environment,
)
from ..logs import register_secret
from .collector_config import ConfigError, _calendar_continuous, _calendar_open

log = logging.getLogger("kis_desk.engine.collector")


class FeedWiring:
    """``_prepare_environment`` / ``_feed_config`` / ``_new_feed`` of a Collector."""

    # provided by Collector
    config: Any
    exchange: Any
    exchange_factory: Any
    environment: Any
    paths: Any
    bus: Any
    clock: Any
    collected: list[str]
    business_date: Any
    _last_ticks: dict[str, Any]
    _credentials: list[AppCredential]
    venue: str

    def _feed_config(self) -> Any:
        from ..feed.config import FeedConfig
        from ..feed.session import SessionConfig

        cfg = self.config
        always = self.exchange is not None if cfg.always_open is None else cfg.always_open
        if cfg.feed is not None:
            return replace(cfg.feed, always_open=always, venue=cfg.venue)
        # KIS issues a token a minute and tells the account holder each time: keep them across
        # restarts (the built-in market's tokens die with it, so there is nothing to keep)
        rest_options: dict[str, Any] = {}
        if self.exchange is None:
            from ..feed.token_cache import EncryptedTokenCache

            rest_options["token_cache"] = EncryptedTokenCache(self.paths.token_dir)
        return FeedConfig(venue=cfg.venue, session=SessionConfig(silence_timeout=cfg.silence_timeout),
                          always_open=always, rest_options=rest_options)

    def _new_feed(self, credentials: list[AppCredential]) -> Any:
        from ..feed.manager import FeedManager

        self._credentials = list(credentials)
        assert self.environment is not None
        return FeedManager(
            self.environment, credentials, self._on_ticks, bus=self.bus,
            config=self._feed_config(), last_seen=self._last_seen,
            is_market_open=lambda now: _calendar_open(now, self.venue),
            is_continuous=lambda now: _calendar_continuous(now, self.venue), clock=self.clock,
        )

    async def _prepare_environment(self) -> list[AppCredential]:
        cfg = self.config
        if cfg.embedded_sim:
            if self.exchange is None and self.exchange_factory is not None:
                self.exchange = self.exchange_factory(cfg)     # Settings switched to it
            if self.exchange is None:
                raise ConfigError("the built-in simulator was not supplied (use wiring.build_collector)")
            resume = {t.stock_code: (t.timestamp.strftime("%Y%m%d"), t.price, t.cum_volume,
                                     t.price * t.cum_volume)
                      for t in self._last_ticks.values()
                      if t is not None and t.timestamp.date() == self.business_date}
            endpoints = await self.exchange.start(self.collected, resume)
            self.environment = custom_environment(endpoints.ws_url, endpoints.rest_url,
                                                  rate=endpoints.rest_rate_per_second, name="sim")
            return list(endpoints.credentials)
        if cfg.ws_url or cfg.rest_url:
            if not (cfg.ws_url and cfg.rest_url):
                raise ConfigError("--ws-url and --rest-url go together")
            base = ENVIRONMENTS.get(cfg.env)
            self.environment = custom_environment(cfg.ws_url, cfg.rest_url,
                                                  rate=base.rest_rate_per_second if base else 19.0,
                                                  name=cfg.env if cfg.env != "sim" else "custom")
        elif cfg.env in ENVIRONMENTS:
            self.environment = ENVIRONMENTS[cfg.env]
        else:
            raise ConfigError(f"unknown environment {cfg.env!r} (sim, mock or real)")
        try:
            credentials = cfg.credentials if cfg.credentials is not None else credentials_from_env()
        except ValueError as exc:     # half a key pair in the environment, named
            raise ConfigError(str(exc)) from exc
        if not credentials:
            if cfg.env == "sim":  # a simulator at an explicit URL accepts any key
                credentials = [AppCredential("key1", Secret("SIMKEY01"), Secret("SIMSECRET01"))]
            else:
                raise ConfigError(
                    f"no KIS app key for the {cfg.env} environment: set KIS_APP_KEY and "
                    "KIS_APP_SECRET (KIS_APP_KEY_2/KIS_APP_SECRET_2 … for more symbols), "
                    "or add keys in the app's settings")
        for c in credentials:
            register_secret(c.app_key.reveal())
            register_secret(c.app_secret.reveal())
        return credentials



__all__ = ["FeedWiring"]
