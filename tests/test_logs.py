"""Secrets never reach a log line, the log file or the database."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from pathlib import Path

from kis_desk.logs import redact, register_secret, setup_logging

ROOT = Path(__file__).resolve().parent.parent


def test_redact_urls_fields_bearer_and_registered_values():
    register_secret("MYAPPKEY-1234567")
    text = redact('postgresql://kis:pa55word@db/kis {"appkey":"AK123","appsecret": "SS456"} '
                  "Authorization: Bearer eyJabc.def-ghi and MYAPPKEY-1234567 again")
    for secret in ("pa55word", "AK123", "SS456", "eyJabc.def-ghi", "MYAPPKEY-1234567"):
        assert secret not in text
    assert "postgresql://kis:***@db/kis" in text


def test_log_records_with_secrets_in_args_and_tracebacks_are_masked(tmp_path):
    stream = io.StringIO()
    setup_logging("DEBUG", tmp_path / "logs", stream=stream)
    register_secret("APPROVAL-abcdef-0123")
    log = logging.getLogger("kis_desk.test")
    log.warning("approval %s", "APPROVAL-abcdef-0123")
    try:
        raise RuntimeError("invalid approval : APPROVAL-abcdef-0123")
    except RuntimeError:
        log.exception("session failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    file_text = (tmp_path / "logs" / "kis-desk.log").read_text()
    assert "APPROVAL-abcdef-0123" not in stream.getvalue() + file_text
    assert "invalid approval : ***" in file_text
    setup_logging("WARNING", None)


async def test_collect_keeps_keys_and_approval_out_of_log_and_database(tmp_path):
    from kis_desk.sim import SimConfig, Simulator

    key, secret = "REALLOOKINGAPPKEY777", "REALLOOKINGSECRET888"
    async with Simulator(SimConfig(codes=["005930"], rate=200, app_keys={key: secret})) as sim:
        env = {**os.environ, "KIS_DESK_HOME": str(tmp_path), "KIS_APP_KEY": key, "KIS_APP_SECRET": secret}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kis_desk", "--log-level", "DEBUG", "collect", "--env", "mock",
            "--ws-url", sim.ws_url, "--rest-url", sim.rest_url, "--codes", "005930", "--duration", "3",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        approvals = sim.approval_keys()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert approvals, "the collector never asked for an approval key"
    texts = [out.decode(), err.decode()]
    texts += [p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*.log")]
    texts += [p.read_bytes().decode("latin-1") for p in (tmp_path / "data").rglob("*") if p.is_file()]
    blob = "\n".join(texts)
    for value in (key, secret, *approvals):
        assert value not in blob
