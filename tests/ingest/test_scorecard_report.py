"""GET /report: the scorecard page, over HTTP and in a real headless browser.

The browser is Debian's chromium (/usr/bin/chromium, which .ci/run installs with apt-get), driven
by Playwright for Python with `executable_path`: Playwright's own browser builds are never
downloaded. Without /usr/bin/chromium the browser tests are skipped, saying so.

The page is served by an API of this module's own on a fresh database, so it holds exactly the
channels posted here: STORY (tests/support/scorecard.py, counted by hand in test_scorecard.py) as "TP Capital", and a
channel whose name and signal text are HTML-injection attempts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import db
from tests.support.ingest import Server, Target, in_process, settings_for, start_server
from tests.support.scorecard import at, new_channel_id, payload, post, post_story

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Set to a path to copy the page's screenshot there too (docs/report.png was made so:
# SCORECARD_SCREENSHOT=docs/report.png uv run pytest tests/ingest/test_scorecard_report.py).
SCREENSHOT_ENV = "SCORECARD_SCREENSHOT"

EVIL_NAME = '<img src=x onerror=alert(1)>Canal "Pirata" & Cia</h2><script>alert(2)</script>'
EVIL_SIGNAL = '🟢Swing Trade "><script>alert(3)</script>\nAtivo: TAEE11\nCompra: 30,00\nAlvo 1: 33,00\nStop: 28,00'


@pytest.fixture(scope="module")
def report_server(pg_server_url: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    name = db.create_test_database(pg_server_url, migrated_template)
    url = db.with_database(pg_server_url, name)
    running = start_server(url, tmp_path_factory.mktemp("report-api") / "server.log")
    try:
        yield running
    finally:
        running.stop()
        db.drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def channels(report_server: Server) -> dict[str, int]:
    main, evil = new_channel_id(), new_channel_id()
    post_story(report_server, main, name="TP Capital")
    post(report_server, payload(evil, 1, at(20, 13), EVIL_SIGNAL, name=EVIL_NAME))
    return {"main": main, "evil": evil}


def page(target: Target, **params: object) -> httpx.Response:
    response = target.client.get("/report", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response


# -- over HTTP -------------------------------------------------------------------------------

def test_empty_state(database_url: str) -> None:
    with in_process(settings_for(database_url)) as api:
        response = page(api)
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert 'id="empty"' in response.text and "Ainda não há sinais registrados" in response.text
        assert '<section class="channel"' not in response.text
        named = page(api, channel="<b>x</b>").text
        assert "Não há sinais do canal <strong>&lt;b&gt;x&lt;/b&gt;</strong>" in named


def test_the_page_is_self_contained_and_escapes_what_channels_wrote(report_server: Server, channels: dict) -> None:
    response = page(report_server)
    html = response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none': no script runs
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    # No external asset: nothing is loaded from anywhere (the SVG namespace is not a URL it fetches).
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert "<link" not in html and "<script" not in html and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;Canal &#34;Pirata&#34; &amp; Cia&lt;/h2&gt;&lt;script&gt;" in html
    assert 'title="🟢Swing Trade &#34;&gt;&lt;script&gt;alert(3)&lt;/script&gt;' in html
    # One section per channel, by name ("<img…" sorts before "TP Capital").
    assert html.index(f'id="channel-{channels["evil"]}"') < html.index(f'id="channel-{channels["main"]}"')


def test_channel_filter(report_server: Server, channels: dict) -> None:
    html = page(report_server, channel="TP Capital").text
    assert f'id="channel-{channels["main"]}"' in html and f'id="channel-{channels["evil"]}"' not in html
    assert "GGBR4" not in html  # the deleted signal is in no list
    html = page(report_server, channel=str(channels["main"]), **{"from": "2025-11-01", "to": "2025-11-30"}).text
    assert "Sinais de 01/11/2025 00:00 a 30/11/2025 23:59." in html
    assert '<div data-stat="signals"><dt>Sinais</dt><dd>3</dd></div>' in html


@pytest.mark.parametrize(("params", "field"), [({"from": "ontem"}, "from"), ({"channel": "a\x00b"}, "channel")])
def test_bad_parameters_are_400(report_server: Server, params: dict, field: str) -> None:
    response = httpx.get(report_server.url + "/report", params=params)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


# -- in the browser --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: the report's browser tests need Debian's chromium package "
                    "(.ci/run installs it with `apt-get install -y chromium` when apt-get is there)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - a browser that cannot start is the machine's, not the page's
            pytest.skip(f"{CHROMIUM} did not start (a broken chromium install?): {str(exc)[:300]}")
        try:
            yield launched
        finally:
            launched.close()


def open_report(browser, server: Server, width: int, height: int, query: str = ""):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": width, "height": height}, locale="pt-BR")
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requests: list[str] = []
    tab.on("request", lambda request: requests.append(request.url))
    response = tab.goto(server.url + "/report" + query)
    assert response is not None and response.status == 200
    return context, tab, dialogs, requests


def summary(tab, channel_id: int) -> dict[str, str]:  # noqa: ANN001
    return tab.eval_on_selector_all(
        f'#channel-{channel_id} .summary [data-stat]',
        "cells => Object.fromEntries(cells.map(c => [c.dataset.stat, c.querySelector('dd').innerText.trim()]))")


def test_the_numbers_on_the_rendered_page(browser, report_server: Server, channels: dict, tmp_path: Path) -> None:  # noqa: ANN001
    context, tab, dialogs, requests = open_report(browser, report_server, 1000, 900)
    try:
        main = channels["main"]
        # test_scorecard.ALL, as the page writes it.
        assert summary(tab, main) == {
            "win_rate": "70,0%", "signals": "15", "wins": "7", "losses": "3", "open": "3", "target_hit": "5",
            "final_target_hit": "1", "stopped": "3", "cancelled": "1", "closed": "4", "avg_result_pct": "+3,30%",
            "best_result_pct": "+20,00%", "worst_result_pct": "−8,00%", "median_hours_to_first_target": "4,0 h"}
        assert tab.inner_text(f"#channel-{main} h2") == "TP Capital"
        bars = tab.eval_on_selector_all(f"#channel-{main} svg.chart g.bar", "gs => gs.map(g => [g.dataset.period, "
                                        "+g.dataset.wins, +g.dataset.losses, +g.dataset.open, g.querySelectorAll('rect').length])")
        assert bars == [["2025-10", 5, 3, 2, 3], ["2025-11", 2, 0, 1, 2]]
        rows = tab.eval_on_selector_all(f"#channel-{main} table.latest tbody tr",
                                        "trs => trs.map(tr => [...tr.cells].map(td => td.innerText.replace(/\\s+/g, ' ').trim()))")
        assert len(rows) == 15  # fewer than 20: all of them, newest first
        assert rows[0] == ["05/11/2025 10:00", "USIM5 Venda · Swing Trade", "Encerrado", "+3,00%"]
        assert rows[3] == ["31/10/2025 23:00", "KLBN11 Compra · Swing Trade", "Aberto", "—"]
        assert rows[8] == ["13/10/2025 10:00", "SUZB3 Compra · Swing Trade", "Encerrado", "+12,00%"]
        assert rows[10] == ["08/10/2025 10:00", "WEGE3 Compra · Swing Trade", "Stopado", "−3,00%"]
        assert rows[-1] == ["06/10/2025 10:00", "PETR4 Compra · Swing Trade", "Aberto", "—"]

        # The injection attempts are text: no element was made of them and nothing ran.
        evil = channels["evil"]
        assert tab.inner_text(f"#channel-{evil} h2") == EVIL_NAME
        assert tab.eval_on_selector(f"#channel-{evil} table.latest tbody tr", "tr => tr.title") == EVIL_SIGNAL
        assert tab.evaluate("document.querySelectorAll('script, img, iframe, object').length") == 0
        assert dialogs == []
        assert requests == [report_server.url + "/report"]  # nothing else was fetched

        shot = tmp_path / "report.png"
        tab.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get(SCREENSHOT_ENV):
            shutil.copy(shot, os.environ[SCREENSHOT_ENV])
    finally:
        context.close()


def test_readable_on_a_phone(browser, report_server: Server, channels: dict, tmp_path: Path) -> None:  # noqa: ANN001
    context, tab, _, _ = open_report(browser, report_server, 360, 740, f"?channel={channels['main']}")
    try:
        # Nothing wider than the screen: no sideways scrolling, no cell cut off inside its table.
        assert tab.evaluate("document.documentElement.scrollWidth") <= 360
        widest = tab.evaluate("Math.max(...[...document.querySelectorAll('body *')]"
                              ".map(e => e.getBoundingClientRect().right))")
        assert widest <= 360
        wrap = tab.eval_on_selector(".table-wrap", "w => [w.scrollWidth, w.clientWidth]")
        assert wrap[0] <= wrap[1]
        assert summary(tab, channels["main"])["win_rate"] == "70,0%"
        # Summary cards in two columns, chart no wider than the screen.
        columns = tab.eval_on_selector(".summary", "d => getComputedStyle(d).gridTemplateColumns.split(' ').length")
        assert columns == 2
        assert tab.eval_on_selector("svg.chart", "s => s.getBoundingClientRect().width") <= 360 - 2 * 16
        tab.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
    finally:
        context.close()


def test_with_a_read_token_the_browser_asks_for_it(report_server: Server, channels: dict, browser,  # noqa: ANN001
                                                   tmp_path: Path) -> None:
    """API_READ_TOKEN set: the page answers 401 with a Basic challenge, which is what makes a browser
    show its password prompt; the token typed there (any user name) opens the page."""
    read_token = "read-token-for-the-browser-0123456789abcdef"
    # A second API with the read token, on the same database as the open one.
    server = start_server(report_server.database_url, tmp_path / "server.log", API_READ_TOKEN=read_token)
    try:
        challenge = httpx.get(server.url + "/report", timeout=30)
        assert challenge.status_code == 401 and challenge.headers["www-authenticate"].startswith("Basic ")
        # Playwright answers the challenge with these, as a person would in the prompt.
        context = browser.new_context(http_credentials={"username": "trader", "password": read_token})
        try:
            tab = context.new_page()
            response = tab.goto(server.url + "/report")
            assert response is not None and response.status == 200
            assert summary(tab, channels["main"])["signals"] == "15"
            # another channel's page reuses the credentials the browser now holds
            again = tab.goto(server.url + f"/report?channel={channels['main']}")
            assert again is not None and again.status == 200
        finally:
            context.close()
        # Headless chromium cannot show the prompt: with no password, or a wrong one, the page is not
        # opened (chromium either shows the 401 or fails the navigation where a person would be asked).
        for credentials in (None, {"username": "trader", "password": "not-the-token"}):
            context = browser.new_context(http_credentials=credentials)
            try:
                try:
                    refused = context.new_page().goto(server.url + "/report")
                except Exception as exc:  # noqa: BLE001 - playwright's Error, by its message
                    assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc), exc
                else:
                    assert refused is not None and refused.status == 401, credentials
            finally:
                context.close()
    finally:
        server.stop()
