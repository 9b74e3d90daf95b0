"""The fault-injection harness's own pieces, checked without the services.

If the script generator, the checker, the proxy or the process control were wrong, the fault
run could pass while losing messages; these tests pin each piece down.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import DeletedMessage, EditedMessage, NewMessage, decode_payload
from ingest_api.parser import FollowUp, Signal, parse
from tests.reliability.harness import (
    Database,
    ManagedProcess,
    RunConfig,
    StallableProxy,
    build_script,
    check_database,
    plan_faults,
    replay_final_state,
)
from tests.support.db import connection
from tests.support.processes import free_ports, http_ok
from tests.reliability.harness.run import all_faults, auto_stream_seconds

BASE = datetime(2026, 11, 26, tzinfo=timezone.utc)


# -- the scripted source -----------------------------------------------------------------------

def test_same_seed_same_stream_byte_for_byte() -> None:
    first = build_script(1234, 300, base_time=BASE)
    again = build_script(1234, 300, base_time=BASE)
    other = build_script(1235, 300, base_time=BASE)
    assert first.lines() == again.lines()
    assert first.lines() != other.lines()


def test_stream_contains_every_kind_of_disorder() -> None:
    script = build_script(7, 2000, base_time=BASE)
    stats = script.stats
    assert stats.messages == len(script.expected) == 2000
    assert stats.events == len(script.events) > 2000
    for name in ("edits", "edits_out_of_order", "edits_before_create", "deletions",
                 "deletions_before_create", "deletions_without_date", "duplicates", "backfilled"):
        assert getattr(stats, name) > 0, name
    # Backfill: somewhere a lower message id of a channel is delivered after a higher one.
    seen: dict[int, int] = {}
    late = 0
    for event in script.events:
        if isinstance(event, NewMessage):
            channel = int(event.channel_id)
            late += event.message_id < seen.get(channel, 0)
            seen[channel] = max(seen.get(channel, 0), event.message_id)
    assert late > 0
    # An edit or a deletion that arrives before the message it belongs to.
    created: set[tuple[int, int]] = set()
    early = 0
    for event in script.events:
        key = (int(event.channel_id), event.message_id)
        if isinstance(event, NewMessage):
            created.add(key)
        elif key not in created:
            early += 1
    assert early > 0


def test_every_line_is_a_contract_payload() -> None:
    script = build_script(99, 200, base_time=BASE)
    decoded = [decode_payload(line.rstrip(b"\n")) for line in script.lines()]
    assert decoded == script.events
    assert {type(event) for event in decoded} == {NewMessage, EditedMessage, DeletedMessage}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), shuffle_seed=st.integers(0, 2**32))
def test_expected_state_is_the_same_whatever_the_delivery_order(seed: int, shuffle_seed: int) -> None:
    """The model is a convergence target: any order of the same events ends in it."""
    script = build_script(seed, 150, base_time=BASE)
    assert replay_final_state(script.events) == script.expected
    shuffled = list(script.events)
    random.Random(shuffle_seed).shuffle(shuffled)
    assert replay_final_state(shuffled) == script.expected


# -- the fault plan -----------------------------------------------------------------------------

def test_fault_plan_is_seeded_complete_and_sequential() -> None:
    config = RunConfig(seed=5, gateway_kills=3, api_kills=1, db_restarts=1, slow_periods=1, db_locks=1)
    stream = auto_stream_seconds(config, 2600)
    plan = plan_faults(config, stream)
    assert [(f.kind, f.at, f.hold) for f in plan] == [(f.kind, f.at, f.hold) for f in plan_faults(config, stream)]
    kinds = sorted(f.kind for f in plan)
    assert kinds == sorted(["gateway_kill"] * 3 + ["api_kill", "db_restart", "api_slow", "db_lock"])
    for fault in plan:
        if fault.kind in ("api_slow", "db_lock"):
            assert fault.hold > config.api_timeout_seconds  # slow means beyond the gateway's timeout
    for earlier, later in zip(plan, plan[1:]):
        assert later.at >= earlier.at + earlier.hold  # one fault at a time
    assert plan[0].at >= stream * 0.05 and plan[-1].at + plan[-1].hold <= stream


def test_long_run_plan_fits_a_five_minute_outage() -> None:
    config = RunConfig(seed=1, messages=10_000, gateway_kills=5, api_kills=2, db_restarts=1,
                       api_outage_seconds=300, api_timeout_seconds=10)
    stream = auto_stream_seconds(config, 14_000)
    plan = plan_faults(config, stream)
    outage = [f for f in plan if f.kind == "api_outage"]
    assert len(outage) == 1 and outage[0].hold == 300
    assert plan[-1].at + plan[-1].hold <= stream


def test_kills_in_the_outage_fall_inside_it_and_are_seeded() -> None:
    config = RunConfig(seed=9, messages=10_000, gateway_kills=5, api_kills=2, db_restarts=1,
                       api_outage_seconds=300, api_timeout_seconds=10, gateway_kills_in_outage=2)
    stream = auto_stream_seconds(config, 14_000)
    plan = plan_faults(config, stream)
    (outage,) = [f for f in plan if f.kind == "api_outage"]
    assert [f.kind for f in outage.nested] == ["gateway_kill", "gateway_kill"]
    for kill in outage.nested:
        assert kill.during == "api_outage"
        assert outage.at + 0.1 * outage.hold <= kill.at and kill.at + kill.hold <= outage.at + 0.8 * outage.hold
    assert outage.nested[0].at + outage.nested[0].hold < outage.nested[1].at
    again = plan_faults(config, stream)
    assert [(f.kind, f.at, f.hold) for f in all_faults(plan)] == [(f.kind, f.at, f.hold) for f in all_faults(again)]
    assert len(all_faults(plan)) == len(plan) + 2
    # Without an outage they ride on the slow period (the CI run).
    ci = RunConfig(seed=9, gateway_kills_in_outage=1)
    (slow,) = [f for f in plan_faults(ci, auto_stream_seconds(ci, 2600)) if f.kind == "api_slow"]
    assert len(slow.nested) == 1 and slow.at < slow.nested[0].at < slow.at + slow.hold


# -- the checker ---------------------------------------------------------------------------------

async def _insert(url: str, rows: list[tuple]) -> None:
    async with connection(url) as conn:
        await conn.executemany(
            "INSERT INTO tp_capital.forwarded_messages (channel_id, message_id, original_timestamp, message_text,"
            " edit_date, deleted_at) VALUES ($1, $2, $3, $4, $5, $6)",
            rows,
        )


async def _execute(url: str, sql: str, *args: object) -> None:
    async with connection(url) as conn:
        await conn.execute(sql, *args)


async def test_checker_finds_every_kind_of_difference(database_url: str) -> None:
    script = build_script(3, 60, base_time=BASE)
    rows = [
        (m.channel_id, m.message_id, m.timestamp, m.text, m.edit_date, m.timestamp if m.deleted else None)
        for m in script.expected.values()
    ]
    await _insert(database_url, rows)
    revisions = [(m.channel_id, m.message_id, m.timestamp, date, text)
                 for m in script.expected.values() for date, text in m.revisions.items()]
    async with connection(database_url) as conn:
        await conn.executemany(
            "INSERT INTO tp_capital.message_revisions (channel_id, message_id, original_timestamp, revision_date,"
            " message_text) VALUES ($1, $2, $3, $4, $5)", revisions)
        # Signal rows and lifecycle events as the API would have written them for this model.
        for m in script.expected.values():
            parsed = parse(m.text)
            if isinstance(parsed, Signal):
                await conn.execute(
                    "INSERT INTO tp_capital.tp_capital_signals (ts, channel, signal_type, asset, raw_message,"
                    " channel_id, message_id, message_date, deleted_at) VALUES (0, 'c', $1, $2, $3, $4, $5, $6, $7)",
                    parsed.signal_type, parsed.asset, m.text, m.channel_id, m.message_id, m.timestamp,
                    m.timestamp if m.deleted else None)
            if isinstance(parsed, FollowUp):
                for seq, event in enumerate(parsed.events):
                    await conn.execute(
                        "INSERT INTO tp_capital.signal_events (asset, event_type, raw_message, channel_id, message_id,"
                        " message_date, seq, revision_date, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8)",
                        parsed.asset, event.event_type, m.text, m.channel_id, m.message_id, m.timestamp, seq,
                        m.timestamp if m.deleted else None)
    assert (await check_database(database_url, script.expected)).ok

    keys = sorted(script.expected)
    lost, wrong_text, dup, flipped = keys[0], keys[1], keys[2], keys[3]
    no_history = keys[4]
    await _execute(database_url, "DELETE FROM tp_capital.message_revisions WHERE channel_id=$1 AND message_id=$2",
                   *no_history)
    await _execute(database_url, "DELETE FROM tp_capital.forwarded_messages WHERE channel_id=$1 AND message_id=$2", *lost)
    await _execute(database_url, "UPDATE tp_capital.forwarded_messages SET message_text='stale' "
                   "WHERE channel_id=$1 AND message_id=$2", *wrong_text)
    await _execute(database_url, "UPDATE tp_capital.forwarded_messages SET deleted_at = CASE WHEN deleted_at IS NULL "
                   "THEN now() END WHERE channel_id=$1 AND message_id=$2", *flipped)
    dup_model = script.expected[dup]
    await _insert(database_url, [
        (dup[0], dup[1], dup_model.timestamp + timedelta(seconds=1), dup_model.text, None, None),
        (-100999, 1, BASE, "not in the source", None, None),
    ])
    signal_keys = sorted(k for k, m in script.expected.items() if isinstance(parse(m.text), Signal))
    event_keys = sorted(k for k, m in script.expected.items() if isinstance(parse(m.text), FollowUp))
    lost_signal, lost_event = signal_keys[-1], event_keys[-1]
    await _execute(database_url, "DELETE FROM tp_capital.tp_capital_signals WHERE channel_id=$1 AND message_id=$2",
                   *lost_signal)
    await _execute(database_url, "DELETE FROM tp_capital.signal_events WHERE channel_id=$1 AND message_id=$2",
                   *lost_event)
    result = await check_database(database_url, script.expected)
    assert not result.ok
    assert result.wrong_signals == [lost_signal]
    assert result.wrong_events == [lost_event]
    assert result.lost == [lost]
    assert result.wrong_text == [wrong_text]
    assert result.wrong_deleted == [flipped]
    assert result.duplicated == [dup]
    assert result.extra == [(-100999, 1)]
    assert result.wrong_revisions == [no_history]
    assert result.samples


# -- the proxy -----------------------------------------------------------------------------------

def _echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def test_proxy_passes_traffic_holds_it_while_stalled_and_releases_it() -> None:
    server, port = _echo_server()
    try:
        with StallableProxy(port) as proxy:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as client:
                client.sendall(b"ping")
                assert client.recv(100) == b"ping"
                proxy.stall()
                client.sendall(b"slow")
                client.settimeout(0.7)
                with pytest.raises(socket.timeout):
                    client.recv(100)  # held beyond the client's timeout
                proxy.resume()
                client.settimeout(2)
                assert client.recv(100) == b"slow"
    finally:
        server.close()


def test_proxy_closes_the_client_when_the_target_is_down() -> None:
    (dead_port,) = free_ports(1)
    with StallableProxy(dead_port) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as client:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert client.recv(100) == b""


# -- process control -----------------------------------------------------------------------------

_SERVER_WITH_CHILD = textwrap.dedent(
    """
    import http.server, subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("child", child.pid, flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_takes_down_the_whole_process_group(tmp_path) -> None:
    (port,) = free_ports(1)
    service = ManagedProcess(
        "toy", [sys.executable, "-c", _SERVER_WITH_CHILD, str(port)], dict(os.environ), tmp_path / "toy.log",
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/"),
    )
    service.start(timeout=20)
    assert service.running
    deadline = time.monotonic() + 5
    while "child" not in (tmp_path / "toy.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int((tmp_path / "toy.log").read_text().split("child")[1].split()[0])
    assert _alive(child)
    service.kill()
    assert not service.running
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)  # no orphan left holding resources
    service.start(timeout=20)  # and it comes back
    assert service.starts == 2 and http_ok(f"http://127.0.0.1:{port}/")
    service.stop()
    assert not service.running


def test_database_survives_a_crash_restart_on_the_same_port(tmp_path) -> None:
    db = Database(tmp_path / "pg").start()
    try:
        port = db.server.port
        import asyncio

        asyncio.run(_insert(db.url, [(-1001, 1, BASE, "before the crash", None, None)]))
        db.crash()
        assert not db.server.is_running()
        db.start_again()
        assert db.server.port == port
        stored = asyncio.run(_count(db.url))
        assert stored == 1
    finally:
        db.destroy()


async def _count(url: str) -> int:
    async with connection(url) as conn:
        return await conn.fetchval("SELECT count(*) FROM tp_capital.forwarded_messages")


def test_backlog_is_measured_until_the_queue_is_back_to_live_levels() -> None:
    from tests.reliability.harness.run import Fault, QueueMonitor

    monitor = QueueMonitor.__new__(QueueMonitor)
    monitor.samples = [(10.0, 0), (11.0, 300), (12.0, 900), (13.0, 400), (14.0, 20), (15.0, 0),
                       (20.0, 500), (21.0, 600), (22.0, 700)]
    kill = Fault("api_kill", 9.0, 2.0, started=9.0, recovered=11.0)
    outage = Fault("api_outage", 19.0, 5.0, started=19.0, recovered=20.0)
    nested = Fault("gateway_kill", 20.5, 1.0, started=20.5, recovered=21.5, during="api_outage")
    first, second = monitor.backlogs([kill, outage, nested], live_level=50)
    assert (first.fault, first.depth, first.drained_after) == ("api_kill", 900, 3.0)
    # Cut short by the gateway kill at +20.5: not "drained", never a number from after it.
    assert (second.fault, second.depth, second.drained_after) == ("api_outage", 500, None)
    # The peak before the API came back counts: the queue often empties within the next sample.
    monitor.samples = [(8.0, 0), (9.5, 200), (10.5, 450), (11.5, 3)]
    (only,) = monitor.backlogs([kill], live_level=50)
    assert (only.depth, only.drained_after) == (450, 0.5)


def test_queue_depth_at_each_gateway_kill_is_the_last_sample_before_it() -> None:
    from tests.reliability.harness.run import Fault, QueueMonitor

    monitor = QueueMonitor.__new__(QueueMonitor)
    monitor.samples = [(1.0, 0), (2.0, 40), (3.0, 3500), (4.0, 0)]
    kills = [Fault("gateway_kill", 0.5, 1.0, started=0.5), Fault("api_kill", 2.0, 1.0, started=2.0),
             Fault("gateway_kill", 3.2, 1.0, started=3.2, during="api_outage")]
    assert monitor.queued_at_kills(kills) == [0, 3500]
