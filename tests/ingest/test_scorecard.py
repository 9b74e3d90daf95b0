"""The channel scorecard (issue 18) through real HTTP: GET /signals/stats in JSON and CSV, grouped by
month, ISO week and in all, with from/to bounds and bad parameters, and api_signal_outcomes_total.

STORY is one channel's October and November 2025, a signal in each outcome; every expected number
below was counted by hand from it (the comments say which signals make each one).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ingest import Api, Target, auth, in_process, settings_for, start_server
from tests.support.scorecard import (
    SIGNAL,
    STORY,
    at,
    channel_name,
    new_channel_id,
    payload,
    post,
    post_story,
    rows,
    stats,
)
from tests.support import db
from ts_runtime.settings import HttpSettings
from ts_ops.migrations import apply_migrations, default_migrations_dir

@pytest.fixture(scope="module")
def story(api: Api) -> int:
    channel_id = new_channel_id()
    post_story(api, channel_id)
    return channel_id


# -- the expected numbers, by hand -----------------------------------------------------------

# October (São Paulo): S1-S10, S12, S16 (S11 deleted) = 12.
OCTOBER = {
    "period": "2025-10", "signals": 12,
    "open": 2,                  # S1, S16
    "target_hit": 4,            # S2, S3, S5, S9
    "final_target_hit": 1,      # S3
    "stopped": 3,               # S4, S5, S10
    "cancelled": 1,             # S6
    "closed": 3,                # S7, S8, S12
    "win_rate": 0.625,          # wins S2 S3 S5 S7 S9 = 5; losses S4 S8 S10 = 3; 5 / 8
    "avg_result_pct": 2.75,     # (10 + 20 - 8 - 3 + 12 - 6 + 4 - 7) / 8 = 22 / 8
    "best_result_pct": 20.0,    # S3 (S11's +50 is deleted)
    "worst_result_pct": -8.0,   # S4
    "median_hours_to_first_target": 3.0,  # 2, 2, 4, 6
    "wins": 5, "losses": 3,
}
NOVEMBER = {
    "period": "2025-11", "signals": 3,  # S13, S14, S15
    "open": 1, "target_hit": 1, "final_target_hit": 0, "stopped": 0, "cancelled": 0, "closed": 1,
    "win_rate": 1.0,            # S13 (target), S15 (short closed +3); no loss
    "avg_result_pct": 5.5,      # (8 + 3) / 2
    "best_result_pct": 8.0, "worst_result_pct": 3.0,
    "median_hours_to_first_target": 8.0,
    "wins": 2, "losses": 0,
}
ALL = {
    "period": "all", "signals": 15, "open": 3, "target_hit": 5, "final_target_hit": 1, "stopped": 3,
    "cancelled": 1, "closed": 4,
    "win_rate": 0.7,            # 7 / 10
    "avg_result_pct": 3.3,      # (22 + 8 + 3) / 10
    "best_result_pct": 20.0, "worst_result_pct": -8.0,
    "median_hours_to_first_target": 4.0,  # 2, 2, 4, 6, 8
    "wins": 7, "losses": 3,
}
WEEKS = [
    {"period": "2025-W41", "signals": 6,  # Oct 6-12: S1-S6
     "open": 1, "target_hit": 3, "final_target_hit": 1, "stopped": 2, "cancelled": 1, "closed": 0,
     "win_rate": 0.75,          # S2 S3 S5 / S4
     "avg_result_pct": 4.75,    # (10 + 20 - 8 - 3) / 4
     "best_result_pct": 20.0, "worst_result_pct": -8.0, "median_hours_to_first_target": 4.0,  # 2, 4, 6
     "wins": 3, "losses": 1},
    {"period": "2025-W42", "signals": 5,  # Oct 13-19: S7 S8 S9 S10 S12
     "open": 0, "target_hit": 1, "final_target_hit": 0, "stopped": 1, "cancelled": 0, "closed": 3,
     "win_rate": 0.5,           # S7 S9 / S8 S10
     "avg_result_pct": 0.75,    # (12 - 6 + 4 - 7) / 4
     "best_result_pct": 12.0, "worst_result_pct": -7.0, "median_hours_to_first_target": 2.0,
     "wins": 2, "losses": 2},
    {"period": "2025-W44", "signals": 1,  # S16, Friday Oct 31 in São Paulo
     "open": 1, "target_hit": 0, "final_target_hit": 0, "stopped": 0, "cancelled": 0, "closed": 0,
     "win_rate": None, "avg_result_pct": None, "best_result_pct": None, "worst_result_pct": None,
     "median_hours_to_first_target": None, "wins": 0, "losses": 0},
    {**NOVEMBER, "period": "2025-W45"},  # Nov 3-9: S13 S14 S15
]
FIELDS = ["channel", "period", "signals", "open", "target_hit", "final_target_hit", "stopped", "cancelled", "closed",
          "win_rate", "avg_result_pct", "best_result_pct", "worst_result_pct", "median_hours_to_first_target",
          "channel_id", "wins", "losses"]


def expected(channel_id: int, *groups: dict) -> list[dict]:
    return [{"channel": channel_name(channel_id), **group, "channel_id": channel_id} for group in groups]


# -- JSON ------------------------------------------------------------------------------------

def test_by_month_counts_each_outcome(api: Api, story: int) -> None:
    data = rows(api, channel=str(story), group="month")
    assert data == expected(story, OCTOBER, NOVEMBER)
    assert list(data[0]) == FIELDS  # the fields in its order, then what they come from


def test_month_is_the_default_and_the_channel_name_works_too(api: Api, story: int) -> None:
    assert rows(api, channel=channel_name(story)) == expected(story, OCTOBER, NOVEMBER)


def test_by_iso_week_in_sao_paulo(api: Api, story: int) -> None:
    assert rows(api, channel=str(story), group="week") == expected(story, *WEEKS)


def test_all(api: Api, story: int) -> None:
    assert rows(api, channel=str(story), group="all") == expected(story, ALL)


def test_without_a_channel_every_channel_has_its_rows(api: Api, story: int) -> None:
    other = new_channel_id()
    post(api, payload(other, 1, at(20, 13), SIGNAL.format(asset="EMBR3")))
    data = [r for r in rows(api, group="all") if r["channel_id"] in (story, other)]
    assert [(r["channel_id"], r["signals"], r["open"]) for r in data] == [(story, 15, 3), (other, 1, 1)]


def test_an_unknown_channel_has_no_rows(api: Api, story: int) -> None:
    assert rows(api, channel="no such channel") == []


# -- from / to -------------------------------------------------------------------------------

def test_dates_without_a_zone_are_sao_paulo_days(api: Api, story: int) -> None:
    # Oct 13 to Oct 31 in São Paulo: W42's five signals and S16 (Oct 31, 23:00 there).
    data = rows(api, channel=str(story), group="all", **{"from": "2025-10-13", "to": "2025-10-31"})
    assert data == expected(story, {
        "period": "all", "signals": 6, "open": 1, "target_hit": 1, "final_target_hit": 0, "stopped": 1,
        "cancelled": 0, "closed": 3, "win_rate": 0.5, "avg_result_pct": 0.75, "best_result_pct": 12.0,
        "worst_result_pct": -7.0, "median_hours_to_first_target": 2.0, "wins": 2, "losses": 2})
    # The same days in UTC leave S16 (Nov 1, 02:00 UTC) out.
    utc = rows(api, channel=str(story), group="all",
               **{"from": "2025-10-13T00:00:00Z", "to": "2025-10-31T23:59:59Z"})
    assert [(r["signals"], r["open"]) for r in utc] == [(5, 0)]


def test_epoch_milliseconds_and_an_outcome_after_to(api: Api, story: int) -> None:
    s13 = int(at(3, 13, month=11).timestamp() * 1000)
    assert [r["signals"] for r in rows(api, channel=str(story), group="all", **{"from": s13})] == [3]
    # `to` is inclusive to the millisecond; S13's target came 8 hours after it and still counts.
    [row] = rows(api, channel=str(story), group="all", **{"from": s13, "to": s13})
    assert (row["signals"], row["target_hit"], row["wins"], row["median_hours_to_first_target"]) == (1, 1, 1, 8.0)
    [row] = rows(api, channel=str(story), group="all", **{"from": "2025-11-01", "to": "2025-11-03T12:00"})
    assert (row["signals"], row["target_hit"]) == (1, 1)  # S13 at 10:00 São Paulo; S16 was Oct 31 there
    assert rows(api, channel=str(story), **{"from": s13 + 1, "to": s13 + 60_000}) == []


# -- CSV -------------------------------------------------------------------------------------

CSV_HEADER = ("CANAL;PERIODO;SINAIS;ABERTOS;ALVO_ATINGIDO;ALVO_FINAL;STOPADOS;CANCELADOS;ENCERRADOS;"
              "TAXA_ACERTO_PCT;RESULTADO_MEDIO_PCT;MELHOR_RESULTADO_PCT;PIOR_RESULTADO_PCT;MEDIANA_HORAS_1O_ALVO;"
              "CANAL_ID;GANHOS;PERDAS")


def test_csv_by_month(api: Api, story: int) -> None:
    response = stats(api, channel=str(story), format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    name = channel_name(story)
    assert response.text.splitlines() == [
        CSV_HEADER,
        f"{name};2025-10;12;2;4;1;3;1;3;62,50;2,75;20,00;-8,00;3,00;{story};5;3",
        f"{name};2025-11;3;1;1;0;0;0;1;100,00;5,50;8,00;3,00;8,00;{story};2;0",
    ]


def test_csv_by_week_and_all(api: Api, story: int) -> None:
    name = channel_name(story)
    weeks = stats(api, channel=str(story), group="week", format="csv").text.splitlines()
    assert weeks[1:] == [
        f"{name};2025-W41;6;1;3;1;2;1;0;75,00;4,75;20,00;-8,00;4,00;{story};3;1",
        f"{name};2025-W42;5;0;1;0;1;0;3;50,00;0,75;12,00;-7,00;2,00;{story};2;2",
        f"{name};2025-W44;1;1;0;0;0;0;0;;;;;;{story};0;0",
        f"{name};2025-W45;3;1;1;0;0;0;1;100,00;5,50;8,00;3,00;8,00;{story};2;0",
    ]
    assert stats(api, channel=str(story), group="all", format="csv").text.splitlines() == [
        CSV_HEADER, f"{name};all;15;3;5;1;3;1;4;70,00;3,30;20,00;-8,00;4,00;{story};7;3"]


def test_csv_cells_a_spreadsheet_would_run_are_quoted(api: Api) -> None:
    channel_id = new_channel_id()
    post(api, payload(channel_id, 1, at(20, 13), SIGNAL.format(asset="EMBR3"), name='=HYPERLINK("http://x")'))
    lines = stats(api, channel=str(channel_id), group="all", format="csv").text.splitlines()
    assert lines[1].startswith("\"'=HYPERLINK(\"\"http://x\"\")\";all;1;1;")


# -- bad parameters --------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "field"), [
    ({"group": "year"}, "group"),
    ({"group": ""}, "group"),
    ({"format": "xml"}, "format"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2025-02-30"}, "to"),
    ({"to": "99999999999999999"}, "to"),  # epoch ms past year 9999
    ({"from": "2025-10-01T10:00:00+25:00"}, "from"),
    ({"from": "x" * 41}, "from"),
    ({"channel": "TP\x00Capital"}, "channel"),
    ({"channel": "x" * 201}, "channel"),
])
def test_bad_parameters_are_400_naming_them(api: Api, params: dict, field: str) -> None:
    response = stats(api, **params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [field], body
    assert body["details"] and all(d.startswith(field) for d in body["details"])


@pytest.mark.parametrize(("params", "signals"), [
    ({"to": "9999-12-31T23:59:59"}, 15),             # past year 9999 once in UTC: the end of time
    ({"to": "9999-12-31"}, 15),
    ({"to": "253402300799999"}, 15),                 # the latest epoch milliseconds /signals accepts
    ({"from": "0001-01-01T00:00:00+14:00"}, 15),     # before year 1 in UTC: the start of time
    ({"from": "-62135596800000"}, 15),
    ({"from": "9999-12-31T23:00:00-05:00"}, None),   # after every signal
    ({"from": "2025-10-06T10:00:00.123456789"}, 14),  # nanoseconds: Python reads them (S1 is at 10:00 there)
])
def test_the_ends_of_the_calendar(api: Api, story: int, params: dict, signals: int | None) -> None:
    data = rows(api, channel=str(story), group="all", **params)
    assert [r["signals"] for r in data] == ([signals] if signals else [])
    assert api.client.get("/report", params={"channel": str(story), **params}).status_code == 200


def test_from_after_to_is_400_naming_both(api: Api) -> None:
    response = stats(api, **{"from": "2025-11-01", "to": "2025-10-01"})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["from", "to"]


def test_the_read_token_applies(api_database_url: str) -> None:
    read_token = "read-token-0123456789abcdef-0123456789"
    with in_process(settings_for(api_database_url, http=HttpSettings(read_token=read_token))) as api:
        for path in ("/signals/stats", "/report"):
            assert api.client.get(path).status_code == 401
            assert api.client.get(path, headers={"X-API-Key": read_token}).status_code == 200
        # A browser opens /report by itself: its 401 asks for the token as HTTP Basic's password.
        asked = api.client.get("/report")
        assert asked.headers["www-authenticate"] == 'Basic realm="API_READ_TOKEN", charset="UTF-8"'
        assert "password a browser asks for" in asked.json()["details"][0]
        assert api.client.get("/report", auth=("trader", read_token)).status_code == 200
        assert api.client.get("/report", auth=("", read_token)).status_code == 200
        wrong = api.client.get("/report", auth=("trader", read_token + "x"))
        assert wrong.status_code == 401 and "www-authenticate" in wrong.headers
        for header in ("Basic !!!", "Basic " + base64.b64encode(read_token.encode()).decode(), "Bearer " + read_token):
            assert api.client.get("/report", headers={"Authorization": header}).status_code == 401, header
        # Only the page: the JSON reads neither prompt nor take Basic (a browser that remembered the
        # password would send it on every request to the origin).
        json_read = api.client.get("/signals/stats", auth=("trader", read_token))
        assert json_read.status_code == 401 and "www-authenticate" not in json_read.headers


def test_openapi_documents_both_routes(api: Api) -> None:
    schema = api.client.get("/schema/openapi.json").json()
    stats_get = schema["paths"]["/signals/stats"]["get"]
    assert stats_get["operationId"] == "getSignalStats"
    assert {p["name"] for p in stats_get["parameters"]} == {"channel", "from", "to", "group", "format"}
    group = next(p for p in stats_get["parameters"] if p["name"] == "group")
    assert group["schema"]["enum"] == ["month", "week", "all"]
    assert set(stats_get["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "400" in stats_get["responses"]
    report_get = schema["paths"]["/report"]["get"]
    assert report_get["operationId"] == "getReport"
    assert list(report_get["responses"]["200"]["content"]) == ["text/html"]


# -- api_signal_outcomes_total -----------------------------------------------------------------

def outcome_counts(api: Target) -> dict[str, float]:
    text = api.client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "api_signal_outcomes":
            return {s.labels["outcome"]: s.value for s in family.samples if s.name.endswith("_total")}
    raise AssertionError("api_signal_outcomes_total is not in /metrics")


class Counted:
    """The counter's increase since the last look, per outcome (zeros left out)."""

    def __init__(self, api: Target) -> None:
        self.api = api
        self.last = outcome_counts(api)

    def since(self) -> dict[str, float]:
        now = outcome_counts(self.api)
        delta = {k: now[k] - self.last.get(k, 0) for k in now if now[k] != self.last.get(k, 0)}
        self.last = now
        return delta


def test_every_outcome_series_is_exported_from_the_start(api: Api) -> None:
    assert set(outcome_counts(api)) == {"target_hit", "final_target_hit", "stopped", "cancelled", "closed"}


def test_each_outcome_is_counted_once_per_signal(api: Api, api_database_url: str) -> None:
    channel_id = new_channel_id()
    counted = Counted(api)

    def send(message_id: int, when: datetime, text: str, **extra: object) -> None:
        post(api, {**payload(channel_id, message_id, when, text), **extra})

    send(1, at(6, 13), SIGNAL.format(asset="PETR4"))
    assert counted.since() == {}  # a signal alone has no outcome
    send(2, at(6, 14), "PETR4 ALVO 1 ATINGIDO ✅ +5%")
    assert counted.since() == {"target_hit": 1}
    send(2, at(6, 14), "PETR4 ALVO 1 ATINGIDO ✅ +5%")  # redelivered
    send(2, at(6, 14), "PETR4 ALVO 1 ATINGIDO ✅ +5,5%", kind="edited", editDate=at(6, 15).isoformat())
    send(3, at(6, 15), "PETR4 ALVO 2 ATINGIDO ✅ +9%")  # a second target: the same outcome
    assert counted.since() == {}
    send(4, at(6, 16), "PETR4 stop -2%")  # stopped after target 1: both outcomes, each once
    assert counted.since() == {"stopped": 1}

    # A follow-up before its signal is unlinked: counted when the signal arrives and it links.
    send(6, at(7, 14), "VALE3 stop -4%")
    assert counted.since() == {}
    send(5, at(7, 13), SIGNAL.format(asset="VALE3"))
    assert counted.since() == {"stopped": 1}

    # A whole story in one batch: every outcome it reaches, not only the last status.
    batch = [payload(channel_id, 7, at(8, 13), SIGNAL.format(asset="ITUB4")),
             payload(channel_id, 8, at(8, 14), "ITUB4 ALVO FINAL ATINGIDO 🚀 +20%"),
             payload(channel_id, 9, at(8, 15), SIGNAL.format(asset="ABEV3")),
             payload(channel_id, 10, at(8, 16), "Cancelado ABEV3"),
             payload(channel_id, 11, at(8, 17), SIGNAL.format(asset="SUZB3")),
             payload(channel_id, 12, at(8, 18), "Encerramos SUZB3 com +12%")]
    response = api.client.post("/ingest/batch", json={"messages": batch}, headers=auth(), timeout=30)
    assert response.status_code == 200, response.text
    assert counted.since() == {"target_hit": 1, "final_target_hit": 1, "cancelled": 1, "closed": 1}
    api.client.post("/ingest/batch", json={"messages": batch}, headers=auth(), timeout=30)
    assert counted.since() == {}

    # An edit of the first signal re-derives it and relinks the channel from its date: nothing new.
    send(1, at(6, 13), SIGNAL.format(asset="PETR4") + "\n", kind="edited", editDate=at(9, 13).isoformat())
    assert counted.since() == {}

    # The channel's events deleted by hand and re-derived by reparse (new rows, the same signals
    # and outcomes), then a signal posted before all of them relinks the whole channel: nothing new.
    db.fetch(api_database_url, "DELETE FROM tp_capital.signal_events WHERE channel_id = $1", channel_id)
    subprocess.run([sys.executable, "-m", "ingest_api.cli", "reparse", "--channel", str(channel_id),
                    "--database-url", api_database_url], check=True, capture_output=True, timeout=120)
    assert db.fetch(api_database_url, "SELECT count(*) FROM tp_capital.signal_events WHERE channel_id = $1",
                    channel_id)[0][0] == 7
    send(13, at(6, 12), SIGNAL.format(asset="WEGE3"))
    assert counted.since() == {}

    recorded = db.fetch(api_database_url, """
        SELECT s.asset, o.outcome FROM tp_capital.signal_outcomes o
        JOIN tp_capital.tp_capital_signals s ON s.id = o.signal_id
        WHERE s.channel_id = $1 ORDER BY s.asset, o.outcome""", channel_id)
    assert [tuple(r) for r in recorded] == [
        ("ABEV3", "cancelled"), ("ITUB4", "final_target_hit"), ("ITUB4", "target_hit"), ("PETR4", "stopped"),
        ("PETR4", "target_hit"), ("SUZB3", "closed"), ("VALE3", "stopped")]


async def _migrate(url: str, directory: Path) -> None:
    async with db.connection(url) as conn:
        await apply_migrations(conn, directory)


def test_outcomes_on_record_before_the_migration_are_not_counted(empty_database_url: str, tmp_path: Path) -> None:
    """A database from before migration 020: the API still ingests (the outcome statement fails,
    is logged, and the answer is unchanged); 020 then records what is on record, so only outcomes
    reached after it are counted."""
    before_020 = tmp_path / "sql"
    source = default_migrations_dir()
    for schema_dir in source.iterdir():
        (before_020 / schema_dir.name).mkdir(parents=True)
        for path in schema_dir.glob("*.sql"):
            if path.name != "020_signal_outcomes.sql":
                shutil.copy(path, before_020 / schema_dir.name / path.name)
    asyncio.run(_migrate(empty_database_url, before_020))
    running = start_server(empty_database_url, tmp_path / "server.log")
    try:
        channel_id = new_channel_id()
        for i, (when, text) in enumerate(STORY[:4], 1):  # S1, S2, S2's target 1
            post(running, payload(channel_id, i, when, text))
        assert outcome_counts(running)["target_hit"] == 0
        assert "signal outcomes not recorded: migration tp_capital/020 is not applied" in running.log()

        asyncio.run(_migrate(empty_database_url, source))
        recorded = db.fetch(empty_database_url, "SELECT outcome FROM tp_capital.signal_outcomes")
        assert [r["outcome"] for r in recorded] == ["target_hit"]
        counted = Counted(running)
        post(running, payload(channel_id, 5, at(6, 17), "VALE3 ALVO 2 ATINGIDO ✅ +12%"))  # S2 again: on record
        post(running, payload(channel_id, 6, at(6, 18), "PETR4 stop -3%"))
        assert counted.since() == {"stopped": 1}
    finally:
        running.stop()
