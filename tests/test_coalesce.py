"""Live trades of one event-loop pass reach the consumer in one call, in order, never held back."""

from __future__ import annotations

import asyncio
from datetime import datetime

from kis_desk.core.ticks import Tick
from kis_desk.feed.coalesce import LiveTradeCoalescer
from kis_desk.protocol.records import KST

T0 = datetime(2026, 3, 5, 9, 0, 0, tzinfo=KST)


def trade(cum: int, venue: str = "krx") -> Tick:
    return Tick("005930", T0, 70_000, 1, cum, 0, 0.0, 100.0, 0.0, "ws", venue)


def test_frames_of_one_pass_arrive_in_one_call_at_its_end():
    calls: list[list[int]] = []

    async def main() -> None:
        c = LiveTradeCoalescer(lambda ticks: calls.append([t.cum_volume for t in ticks]))
        for cum in range(1, 6):
            c.add([trade(cum)])
        assert calls == []                       # still in the same pass
        await asyncio.sleep(0)
        assert calls == [[1, 2, 3, 4, 5]]
        c.add([trade(6)])
        await asyncio.sleep(0)
        assert calls == [[1, 2, 3, 4, 5], [6]]

    asyncio.run(main())


def test_a_long_burst_is_delivered_every_max_ticks_and_a_venue_change_first_delivers_the_older():
    calls: list[list[tuple[int, str]]] = []

    async def main() -> None:
        c = LiveTradeCoalescer(lambda ticks: calls.append([(t.cum_volume, t.venue) for t in ticks]),
                               max_ticks=4)
        c.add([trade(1), trade(2), trade(3)])
        c.add([trade(4), trade(5)])              # 5 waiting ≥ 4: delivered at once
        assert calls == [[(i, "krx") for i in range(1, 6)]]
        c.add([trade(6)])
        c.add([trade(1, "nxt")])                 # another venue: the krx trade goes first
        assert calls[-1] == [(6, "krx")]
        await asyncio.sleep(0)
        assert calls[-1] == [(1, "nxt")] and len(calls) == 3

    asyncio.run(main())


def test_without_a_running_loop_trades_are_delivered_at_once():
    calls: list[int] = []
    c = LiveTradeCoalescer(lambda ticks: calls.append(len(ticks)))
    c.add([trade(1), trade(2)])
    assert calls == [2] and len(c) == 0
