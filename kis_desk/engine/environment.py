"""Which KIS environment a collector's feed connects to, and with which app keys.

Why its own module: resolving the configuration to endpoints and keys — an explicit
``--ws-url``/``--rest-url`` pair, the mock or real environment, keys from the configuration
or the environment variables (any key for a simulator at an explicit URL), each key
registered with the log's secret filter — is a question with user-facing refusals of its own
(:class:`~.collector_config.ConfigError`), asked by :meth:`Collector.start` and again when
settings change live. The built-in simulator's endpoints come from its exchange instead.
"""

from __future__ import annotations

from ..config import (
    ENVIRONMENTS, AppCredential, Environment, Secret, credentials_from_env, custom_environment,
)
from ..logs import register_secret
from .collector_config import CollectorConfig, ConfigError


def kis_environment(cfg: CollectorConfig) -> tuple[Environment, list[AppCredential]]:
    """The environment and app keys of a configuration that does not use the built-in market;
    raises ConfigError with the reason when it cannot connect anywhere."""
    if cfg.ws_url or cfg.rest_url:
        if not (cfg.ws_url and cfg.rest_url):
            raise ConfigError("--ws-url and --rest-url go together")
        base = ENVIRONMENTS.get(cfg.env)
        environment = custom_environment(cfg.ws_url, cfg.rest_url,
                                         rate=base.rest_rate_per_second if base else 19.0,
                                         name=cfg.env if cfg.env != "sim" else "custom")
    elif cfg.env in ENVIRONMENTS:
        environment = ENVIRONMENTS[cfg.env]
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
    return environment, credentials


__all__ = ["kis_environment"]
