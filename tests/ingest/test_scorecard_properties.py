"""The scorecard against a model of its definitions (Hypothesis): any channel story, posted through
HTTP, gives by month, ISO week and in all what the definitions in docs/ingest-api.md compute from
the story in plain Python, with São Paulo periods.

The model follows the linking rules the stories touch: every signal has its own ticker, so a
follow-up belongs to it, unless the signal was already ended (final target, stop, cancellation,
close): then the follow-up is linked to no signal and counts for none.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.ingest import Api, auth
from tests.support.scorecard import SHORT, SIGNAL, new_channel_id, payload, post, rows
from ingest_api.signals.stats import SAO_PAULO

START = datetime(2025, 9, 30, 20, tzinfo=timezone.utc)  # São Paulo's September still, for 7 hours
TICKERS = ["PETR4", "VALE3", "ITUB4", "BBAS3", "WEGE3", "ABEV3", "SUZB3", "RENT3"]
ENDING = {"final", "stop", "cancel", "close"}
TARGETS = {"t1", "t2", "final"}


def pct_text(value: float | None) -> str:
    if value is None:
        return ""
    return f" {'+' if value > 0 else '-'}{f'{abs(value):g}'.replace('.', ',')}%"


def follow_up_text(kind: str, asset: str, pct: float | None) -> str:
    return {
        "t1": f"{asset} ALVO 1 ATINGIDO ✅{pct_text(pct)}",
        "t2": f"{asset} ALVO 2 ATINGIDO ✅{pct_text(pct)}",
        "final": f"{asset} ALVO FINAL ATINGIDO 🚀{pct_text(pct)}",
        "stop": f"{asset} stop{pct_text(pct)}" if pct is not None else f"{asset} stopado",
        "cancel": f"Cancelado {asset}",
        "close": f"Encerramos {asset} com{pct_text(pct)}" if pct is not None else f"Zerar {asset}",
        "partial": f"Realizar parcial em {asset}{pct_text(pct)}",
        "stop_moved": f"{asset}: subam o stop para 31,00",
    }[kind]


@dataclass
class Event:
    kind: str
    after_minutes: int  # after the previous event (or the signal)
    pct: float | None


@dataclass
class StorySignal:
    asset: str
    minute: int
    short: bool
    deleted: bool
    events: list[Event] = field(default_factory=list)

    @property
    def date(self) -> datetime:
        return START + timedelta(minutes=self.minute)


percentages = st.one_of(st.none(), st.integers(-300, 300).filter(bool).map(lambda v: v / 10))
events = st.builds(Event, st.sampled_from(["t1", "t2", "final", "stop", "cancel", "close", "partial", "stop_moved"]),
                   st.integers(1, 3 * 24 * 60), percentages).map(
    lambda e: Event(e.kind, e.after_minutes, None if e.kind in ("cancel", "stop_moved") else e.pct))
stories = st.lists(
    st.builds(StorySignal, st.just(""), st.integers(0, 75 * 24 * 60), st.booleans(),
              st.sampled_from([False, False, False, True]), st.lists(events, max_size=4)),
    min_size=1, max_size=len(TICKERS),
).map(lambda signals: [StorySignal(TICKERS[i], s.minute, s.short, s.deleted, s.events) for i, s in enumerate(signals)])


def model(story: list[StorySignal], period) -> dict[str, dict]:  # noqa: ANN001
    """The scorecard of `story` by `period(date in São Paulo)`, computed from the definitions."""
    groups: dict[str, list[dict]] = {}
    for signal in story:
        if signal.deleted:
            continue
        linked, moment = [], signal.date
        for event in signal.events:
            moment += timedelta(minutes=event.after_minutes)
            linked.append((event, moment))
            if event.kind in ENDING:
                break  # later follow-ups find no open signal of this ticker
        kinds = {e.kind for e, _ in linked}
        with_pct = [e.pct for e, _ in linked if e.pct is not None]
        result = with_pct[-1] if with_pct else None
        target = bool(kinds & TARGETS)
        closed = "close" in kinds
        win = target or (closed and result is not None and result > 0)
        first_target = next((m for e, m in linked if e.kind in TARGETS), None)
        groups.setdefault(period(signal.date.astimezone(SAO_PAULO)), []).append({
            "target": target, "final": "final" in kinds, "stopped": "stop" in kinds, "cancelled": "cancel" in kinds,
            "closed": closed, "result": result, "win": win,
            "loss": not win and ("stop" in kinds or (closed and result is not None and result < 0)),
            "hours": (first_target - signal.date).total_seconds() / 3600 if first_target else None,
        })
    expected = {}
    for key, members in groups.items():
        results = [m["result"] for m in members if m["result"] is not None]
        hours = [m["hours"] for m in members if m["hours"] is not None]
        wins, losses = sum(m["win"] for m in members), sum(m["loss"] for m in members)
        expected[key] = {
            "signals": len(members),
            "open": sum(not (m["target"] or m["stopped"] or m["cancelled"] or m["closed"]) for m in members),
            "target_hit": sum(m["target"] for m in members), "final_target_hit": sum(m["final"] for m in members),
            "stopped": sum(m["stopped"] for m in members), "cancelled": sum(m["cancelled"] for m in members),
            "closed": sum(m["closed"] for m in members), "wins": wins, "losses": losses,
            "win_rate": wins / (wins + losses) if wins + losses else None,
            "avg_result_pct": statistics.fmean(results) if results else None,
            "best_result_pct": max(results) if results else None,
            "worst_result_pct": min(results) if results else None,
            "median_hours_to_first_target": statistics.median(hours) if hours else None,
        }
    return expected


def post_story(api: Api, channel_id: int, story: list[StorySignal]) -> None:
    messages = []  # (date, order within the signal, text, the signal it deletes)
    for signal in story:
        text = (SHORT if signal.short else SIGNAL).format(asset=signal.asset)
        messages.append((signal.date, 0, text, signal))
        moment = signal.date
        for n, event in enumerate(signal.events, 1):
            moment += timedelta(minutes=event.after_minutes)
            messages.append((moment, n, follow_up_text(event.kind, signal.asset, event.pct), None))
    messages.sort(key=lambda m: (m[0], m[1]))
    batch = [payload(channel_id, i, date, text) for i, (date, _, text, _) in enumerate(messages, 1)]
    response = api.client.post("/ingest/batch", json={"messages": batch}, headers=auth(), timeout=60)
    assert response.status_code == 200, response.text
    for i, (_, _, _, signal) in enumerate(messages, 1):
        if signal is not None and signal.deleted:
            post(api, {"kind": "deleted", "channelId": str(channel_id), "messageId": i})


def close_to(actual: float | None, wanted: float | None, places: int) -> bool:
    if actual is None or wanted is None:
        return actual is wanted
    return abs(actual - wanted) <= 0.5 * 10 ** -places + 1e-9


def check(api: Api, channel_id: int, group: str, wanted: dict[str, dict]) -> None:
    got = {r["period"]: r for r in rows(api, channel=str(channel_id), group=group)}
    assert sorted(got) == sorted(wanted), (group, got, wanted)
    for period, numbers in wanted.items():
        row = got[period]
        for name, value in numbers.items():
            places = 4 if name == "win_rate" else 2
            ok = close_to(row[name], value, places) if isinstance(value, float) or value is None else row[name] == value
            assert ok, (group, period, name, row[name], value)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(story=stories)
def test_the_scorecard_is_its_definitions(api: Api, story: list[StorySignal]) -> None:
    channel_id = new_channel_id()
    post_story(api, channel_id, story)
    check(api, channel_id, "month", model(story, lambda d: d.strftime("%Y-%m")))
    check(api, channel_id, "week", model(story, lambda d: f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}"))
    check(api, channel_id, "all", model(story, lambda d: "all"))
