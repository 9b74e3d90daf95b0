"""Parsing anything a stranger can send runs in linear time and off the event loop (issue 16, item 1).

`_PERCENT_RE` used to backtrack quadratically over a run of digits: 12,000 digits took 7 s on the
request's event loop, 60,000 never finished. Every parser pattern is now bounded; these tests feed
64 KiB adversarial texts and bound the time, check the patterns themselves, and check through real
HTTP that a concurrent request is answered while such texts are ingested.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from ingest_api import parser
from ingest_api.parser import parse
from tests.support.ingest import Server, auth

SIZE = 64 * 1024
# Generous for a shared 2-core machine: each of these takes ~10-50 ms here; a quadratic pattern
# takes seconds to minutes on them.
TIME_BOUND = 1.0


def _fill(unit: str, prefix: str = "", suffix: str = "") -> str:
    room = SIZE - len(prefix) - len(suffix)
    return prefix + (unit * (room // len(unit) + 1))[:room] + suffix


ADVERSARIAL = {
    "digits": _fill("1"),
    "digits then a letter": _fill("1", suffix="x"),
    "digits then a percent after spaces": _fill("1", suffix="  x%"),
    "signed digits": _fill("1", prefix="+"),
    "comma separators": _fill("1,"),
    "dot separators": _fill("1."),
    "mixed separators": _fill("1.1,"),
    "spaces then digits": " " * (SIZE // 2) + "1" * (SIZE // 2),
    "digit space": _fill("1 "),
    "percent signs": _fill("%"),
    "digits and percent": _fill("1 %"),
    "signs": _fill("+-"),
    "label then digits": _fill("1", prefix="Compra: "),
    "label then spaces": _fill(" ", prefix="COMPRA", suffix="x"),
    "label then separators": _fill(":-", prefix="COMPRA "),
    "repeated entry label": _fill("COMPRA "),
    "repeated labels with colons": _fill("entrada:"),
    "repeated target label": _fill("ALVO 1: "),
    "repeated target list": _fill("Alvos: 1, "),
    "repeated stop": _fill("stop "),
    "repeated stop moves": _fill("stop para "),
    "repeated hit words": _fill("alvo "),
    "repeated ranges": _fill("1 a "),
    "repeated money": _fill("R$ "),
    "repeated asset label": _fill("Ativo: "),
    "ticker-like runs": _fill("A1"),
    "repeated tickers": _fill("PETR4 "),
    "letters": _fill("A"),
    "accents": _fill("é"),
    "newlines": _fill("\n"),
    "breakeven words": _fill("zero a "),
    "0x0": _fill("0x"),
    "a signal then digits": _fill("9", prefix="Ativo: PETR4\nCompra: 1,04\nStop: 0,70\n"),
    "absurd price": _fill("0", prefix="Ativo: PETR4\nCompra: 1"),
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_64_kib_adversarial_text_parses_in_bounded_time(name: str) -> None:
    text = ADVERSARIAL[name]
    assert len(text) >= SIZE - 1
    started = time.perf_counter()
    result = parse(text)
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_BOUND, f"{name}: {elapsed:.2f} s"
    if name == "absurd price":
        assert result is None  # more than 12 integer digits: not a price, so not a signal


def test_time_grows_linearly() -> None:
    # 4x the input must not cost 16x (quadratic): measured on the slowest shapes above.
    for unit in ("1", "1 %", "stop para ", "Alvos: 1, "):
        small, large = unit * (4096 // len(unit)), unit * (16384 // len(unit))
        times = []
        for text in (small, large):
            best = min(_timed(text) for _ in range(3))
            times.append(best)
        assert times[1] < times[0] * 8 + 0.005, (unit, times)


def _timed(text: str) -> float:
    started = time.perf_counter()
    parse(text)
    return time.perf_counter() - started


def _unbounded_repetitions(pattern: str) -> list[str]:
    """`*`, `+` and `{n,}` outside character classes and escapes."""
    found = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i += 1
            if i < len(pattern) and pattern[i] == "^":
                i += 1
            if i < len(pattern) and pattern[i] == "]":
                i += 1
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif char in "*+":
            found.append(pattern[i - 1:i + 1])
        elif char == "{" and (open_ended := re.match(r"\{\d+,\}", pattern[i:])):
            found.append(pattern[i - 1] + open_ended.group())
        i += 1
    return found


def test_every_parser_pattern_is_bounded() -> None:
    patterns = []
    for value in vars(parser).values():
        candidates = value if isinstance(value, tuple) else (value,)
        patterns += [p for p in candidates if isinstance(p, re.Pattern)]
    assert len(patterns) > 20
    for compiled in patterns:
        assert _unbounded_repetitions(compiled.pattern) == [], compiled.pattern[:80]
    assert _unbounded_repetitions(r"a+\+[+*]x{2,}") == ["a+", "x{2,}"]  # the check itself works


async def test_a_concurrent_request_is_answered_while_long_texts_are_parsed(server: Server, channel_id: int) -> None:
    """Before: 12,000 digits held the event loop 7 s (a concurrent /ready waited 7 s). Now
    long texts are parsed on a worker thread, each in linear time."""
    texts = [ADVERSARIAL["digits"], ADVERSARIAL["digits and percent"], ADVERSARIAL["repeated stop moves"]]
    bodies = [{"channelId": str(channel_id), "messageId": i + 1, "timestamp": "2025-10-07T12:00:00Z", "text": text}
              for i, text in enumerate(texts)]
    async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=60) as client:
        async def ingest_all() -> list[httpx.Response]:
            # Single messages, a duplicate (parsed again), and a batch of 50 of the slowest shape
            # (about two seconds of parsing in all: on the event loop, /ready would wait that long).
            single = [client.post("/ingest", json=b) for b in bodies + bodies[:1]]
            batch = client.post("/ingest/batch", json={"messages": [
                {**bodies[2], "messageId": 100 + i} for i in range(50)]})
            return await asyncio.gather(*single, batch)

        async def ready_latencies() -> list[float]:
            latencies = []
            for _ in range(20):
                started = time.perf_counter()
                response = await client.get("/ready")
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200
                await asyncio.sleep(0.02)
            return latencies

        started = time.perf_counter()
        responses, latencies = await asyncio.gather(ingest_all(), ready_latencies())
        elapsed = time.perf_counter() - started
    assert [r.status_code for r in responses] == [200] * len(responses)
    # Three messages and one redelivery (which of the two deliveries of message 1 came first varies).
    assert sorted(r.json()["status"] for r in responses[:-1]) == ["duplicate"] + ["stored"] * 3
    assert responses[-1].json()["stored"] == 50
    assert max(latencies) < 0.5, latencies
    assert elapsed < 30
