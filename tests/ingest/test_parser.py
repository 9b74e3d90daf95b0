"""The signal parser against the old system's corpus, and the number formats of the issue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_api.parser import DAY_TRADE, SHORT, SWING_TRADE, Event, FollowUp, Signal, parse, parse_number

# A copy of ../shared/reference/tp-capital-messages.jsonl (the old system's real messages), kept in
# the repository so that a clean clone on a fresh CI machine has it.
CORPUS = Path(__file__).resolve().parent / "corpus" / "tp-capital-messages.jsonl"
FIELDS = ("asset", "signal_type", "buy_min", "buy_max", "target_1", "target_2", "target_final", "stop")


def _corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


# Where the old parser was wrong, on purpose (line number in the corpus → what we do instead and why).
# Every other line: a message the old worker published gives exactly the old fields; a message it
# ignored gives no signal.
IMPROVEMENTS: dict[int, tuple[object, str]] = {
    25: (Signal("BEEFW655", SWING_TRADE, 0.25, 0.27, 0.35, 0.56, 2.0, 0.16),
         'old bug: "COMPRA 0.25-0.27" (label without a colon) parsed to nothing'),
    28: (Signal("PETR4", DAY_TRADE, 38.5, 38.5, 39.0, None, 39.0, 38.0),
         "old parser never read Papel/Entrada/TP/SL nor the Day Trade header its format doc promised"),
    45: (Signal("WINZ25", SWING_TRADE, 120.5, 121.0, 125.0, None, 125.0, 118.0),
         'old parser dropped an unnumbered "Alvo: 125,00"; it is the (only, so final) target'),
    53: (Signal("PETR4", SWING_TRADE, 38.5, 38.5, 40.0, None, 40.0, 37.8),
         'documented "COMPRA: <ticker> @ R$ price - Stop - Alvo" format, ignored by the old parser'),
    64: (Signal("PETR4", SWING_TRADE, 38.5, 38.5, None, None, None, None),
         'documented "COMPRA: <ticker> @ R$ price" format, ignored by the old parser'),
    65: (Signal("WINZ25", SWING_TRADE, 120500.0, 120500.0, None, None, None, None),
         'documented "COMPRA <ticker> @ price" format, ignored by the old parser'),
    66: (Signal("WINZ25", SWING_TRADE, 120500.0, 120500.0, 120700.0, 120900.0, 121100.0, 120300.0),
         'documented "SL" and "Alvos: a, b, c" forms, ignored by the old parser'),
    67: (Signal("PETR4", SWING_TRADE, 8.5, 8.55, 8.7, 8.85, 8.85, None),
         'documented "BUY <ticker> a-b / T1 / T2" form (a lone "S" is not read as stop: too ambiguous)'),
    68: (Signal("PETR4", SWING_TRADE, 8.5, 8.55, 8.7, None, 8.7, None),
         'documented "BUY <ticker> a-b / T1" form'),
    54: (Signal("VALE3", SWING_TRADE, 65.3, 65.3, 63.5, None, 63.5, 66.0, SHORT),
         'old bug: a short ("VENDA: VALE3 @ R$ 65.30 - Stop - Alvo") was dropped; it is a short signal, its sell '
         'price in buy_min/buy_max, the stop above and the target below it'),
    # Follow-ups are lifecycle events now, not ignored messages (and never a signal).
    30: (FollowUp(None, (Event("cancelled"),)),
         'follow-up: a cancellation of "the previous signal" (no ticker); the old parser made asset "OPERA" of it'),
    33: (FollowUp("BOVAW22", (Event("target_hit", 1, 17.02),)), "follow-up: target 1 hit, +17.02%"),
    34: (FollowUp("CYREW296", (Event("stop_hit", None, -25.0),)), "follow-up: stop hit, -25%"),
    61: (FollowUp("VALE3", (Event("stop_moved", breakeven=True),)),
         "follow-up: the stop moved to breakeven (the entry price of the signal it links to)"),
    62: (FollowUp("ITUB4", (Event("target_hit", 1), Event("partial_exit"))),
         "follow-up: target 1 hit and a partial exit, two events of one message"),
}


@pytest.mark.parametrize("line", range(len(_corpus())))
def test_corpus_line(line: int) -> None:
    entry = _corpus()[line]
    result = parse(entry["text"])
    expected = entry["expected"]
    if line in IMPROVEMENTS:
        wanted, _why = IMPROVEMENTS[line]
        assert result == wanted
        if expected["worker_outcome"] != "published":
            # What the old system did here (kept for the record): nothing was published.
            assert expected["worker_outcome"] in ("ignored_invalid", "empty_skipped")
        return
    if expected["worker_outcome"] == "published":
        assert isinstance(result, Signal), entry["text"]
        assert {f: getattr(result, f) for f in FIELDS} == {f: expected[f] for f in FIELDS}
    else:
        # Ignored by the old worker: chit-chat, analysis, notices, a ticker without a buy price.
        # The old parser still produced an "asset" for many of these ("PESSOAL", "OPERA", "ATIVO"
        # from "ATIVO: INVALID", "HTTPS"): we produce no signal at all.
        assert not isinstance(result, Signal), (entry["text"], result)


def test_corpus_covers_every_published_signal() -> None:
    published = [i for i, e in enumerate(_corpus()) if e["expected"]["worker_outcome"] == "published"]
    # Only line 45 diverges from the old output among published signals (a target it dropped).
    assert [i for i in published if i in IMPROVEMENTS] == [45]
    assert len(published) >= 30
    # Every published signal is a long (the old system knew no other side).
    assert all(parse(_corpus()[i]["text"]).side == "long" for i in published)


def test_old_bugs_are_gone() -> None:
    assert parse("Bom dia pessoal! Hoje vamos ter um dia interessante...") is None  # old: asset PESSOAL
    assert parse("ATIVO: INVALID COMPRA: 10.00") is None  # old: asset ATIVO
    # Old: asset OPERA. Now a cancellation with no ticker, never a signal.
    assert parse("Operação CANCELADA - ignore o sinal anterior") == FollowUp(None, (Event("cancelled"),))
    assert parse("PETZ3 - O ativo está fazendo uma flâmula...") is None  # analysis, no buy price
    assert parse("ATIVO: VALE3") is None  # a ticker without a buy price


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1,04", 1.04), ("1.250,50", 1250.5), ("128.450", 128450.0), ("25.50", 25.5), ("0.555", 0.555),
     ("120500", 120500.0), ("0,25", 0.25), ("1.250.000", 1250000.0), ("3", 3.0)],
)
def test_numbers(raw: str, value: float) -> None:
    assert parse_number(raw) == value


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [("COMPRA: 0,25-0,27", 0.25, 0.27), ("COMPRA 52,40 até 53,10", 52.4, 53.1), ("Compra: 1,04 a 1,06", 1.04, 1.06),
     ("COMPRA: 28.50 – 28.80", 28.5, 28.8), ("COMPRA = 128.450", 128450.0, 128450.0)],
)
def test_buy_ranges(text: str, low: float, high: float) -> None:
    signal = parse(f"Ativo: PETR4\n{text}")
    assert isinstance(signal, Signal)
    assert (signal.buy_min, signal.buy_max) == (low, high)


def test_day_trade_header() -> None:
    signal = parse("Day Trade 🔵\nAtivo: PETR4\nCompra: 38,50\nAlvo 1: 39,00\nStop: 38,00")
    assert isinstance(signal, Signal) and signal.signal_type == DAY_TRADE
    signal = parse("🟢Swing Trade\nAtivo: PETR4\nCompra: 38,50")
    assert isinstance(signal, Signal) and signal.signal_type == SWING_TRADE


@pytest.mark.parametrize(
    ("text", "signal_type"),
    [("🟢Swing Trade\nAtivo: PETR4\nCompra: 38,50\nStop: 37,00\nNão faça day trade com este ativo!", SWING_TRADE),
     ("Ativo: PETR4 Compra: 38,50 (day trade proibido)", SWING_TRADE),  # no header: the old default
     ("\n  \n🔵 DAY TRADE\nAtivo: PETR4\nCompra: 38,50", DAY_TRADE),  # blank lines before the header
     ("#DayTrade\nAtivo: PETR4\nCompra: 38,50", DAY_TRADE),
     ("Day Trade: Ativo: PETR4 Compra: 38,50", DAY_TRADE)],
)
def test_signal_type_comes_from_the_header(text: str, signal_type: str) -> None:
    signal = parse(text)
    assert isinstance(signal, Signal) and signal.signal_type == signal_type


@pytest.mark.parametrize(
    ("text", "event", "n", "pct"),
    [("BOVAW22 ALVO 1 ATINGIDO ✅\n+17,02%", "target_hit", 1, 17.02),
     ("BOVAW22 ALVO 2 ATINGIDO ✅ +40%", "target_hit", 2, 40.0),
     ("BOVAW22 ALVO FINAL ATINGIDO 🚀\n+120,5%", "final_target_hit", None, 120.5),
     ("CYREW296 stop\n-25%", "stop_hit", None, -25.0)],
)
def test_follow_ups(text: str, event: str, n: int | None, pct: float) -> None:
    result = parse(text)
    assert isinstance(result, FollowUp)
    assert result.events == (Event(event, n, pct),)


def test_stop_loss_notice_is_a_stop_move_not_a_stop_hit() -> None:
    # The old test said "not a stop hit" (then nothing at all): it is a stop moved to breakeven.
    assert parse("Stop loss movido para breakeven em VALE3") == FollowUp("VALE3", (Event("stop_moved", breakeven=True),))


@given(st.text(max_size=300))
def test_any_text_parses_without_error(text: str) -> None:
    result = parse(text)
    assert result is None or isinstance(result, (Signal, FollowUp))
    if isinstance(result, Signal):
        assert result.buy_min is not None and result.asset.isupper()


# -- both sides, open-ended entries ----------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "side", "buy_min", "buy_max", "target_final", "stop"),
    [
        ("🔴 SINAL DE VENDA\nAtivo: PETR4\nVenda: 30,00 a 30,50\nAlvo 1: 28,00\nStop: 31,50", "short", 30.0, 30.5, 28.0, 31.5),
        ("Venda\nAtivo: PETR4\nEntrada: 30,00\nAlvo: 28,00\nStop: 31,00", "short", 30.0, 30.0, 28.0, 31.0),
        ("SINAL DE VENDA\nAtivo: PETR4\nEntrada: 30,00\nAlvo: 28,00\nStop: 31,00", "short", 30.0, 30.0, 28.0, 31.0),
        ("SELL VALE3 65.30 SL 66.00 TP 63.50", "short", 65.3, 65.3, 63.5, 66.0),
        # A neutral label, no word for the side: a stop above the entry is a short's.
        ("Ativo: BBAS3\nEntrada: 30,00\nStop: 31,00\nAlvo: 28,00", "short", 30.0, 30.0, 28.0, 31.0),
        ("Ativo: BBAS3\nEntrada: 30,00\nStop: 29,00\nAlvo: 32,00", "long", 30.0, 30.0, 32.0, 29.0),
        # "até X" / "abaixo de X": buy up to X; "acima de X": sell from X up.
        ("Ativo: BOVAW32\nCompra até 0,88\nAlvo 1: 1,15\nStop: 0,70", "long", None, 0.88, 1.15, 0.7),
        ("Ativo: PETR4\ncomprar abaixo de R$ 21,00\nStop: 19,50", "long", None, 21.0, None, 19.5),
        ("Ativo: PETR4\nVenda acima de 30,00\nStop: 31,50", "short", 30.0, None, None, 31.5),
    ],
)
def test_sides_and_open_ended_entries(text: str, side: str, buy_min: float | None, buy_max: float | None,
                                      target_final: float | None, stop: float | None) -> None:
    signal = parse(text)
    assert isinstance(signal, Signal), text
    assert (signal.side, signal.buy_min, signal.buy_max, signal.target_final, signal.stop) == (
        side, buy_min, buy_max, target_final, stop)


def test_a_bare_sell_is_no_signal() -> None:
    # "Vender PETR4 a 30" without a stop or target is how channels say "get out": not a short.
    assert not isinstance(parse("Venda PETR4 30,00"), Signal)
    assert parse("Zerar PETR4, venda a 30,00") == FollowUp("PETR4", (Event("closed"),))


# -- every follow-up class -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "asset", "events"),
    [
        ("Alvo 2 batido ✅ +41%", None, [Event("target_hit", 2, 41.0)]),
        ("BOVAW32 atingiu o alvo final 🚀 +230%", "BOVAW32", [Event("final_target_hit", None, 230.0)]),
        ("Alvo final atingido em ITUB4", "ITUB4", [Event("final_target_hit")]),
        ("🚀🚀 Alvo batido! Parabéns a todos 🎉", None, [Event("target_hit")]),  # which one: the signal's next
        ("PETR4 stopado -5%", "PETR4", [Event("stop_hit", None, -5.0)]),
        ("Stop atingido em VALE3 −3,5%", "VALE3", [Event("stop_hit", None, -3.5)]),
        ("Subam o stop para 1,10 em BOVAW32", "BOVAW32", [Event("stop_moved", price=1.1)]),
        ("Novo stop: R$ 1,10", None, [Event("stop_moved", price=1.1)]),
        ("PETR4: stop no 0x0", "PETR4", [Event("stop_moved", breakeven=True)]),
        ("Mover o stop para o ponto de entrada em WEGE3", "WEGE3", [Event("stop_moved", breakeven=True)]),
        ("Operação CANCELADA - ignore o sinal de WINZ25 acima.", "WINZ25", [Event("cancelled")]),
        ("Desconsiderem o último sinal", None, [Event("cancelled")]),
        ("Encerramos PETR4 com +12%", "PETR4", [Event("closed", None, 12.0)]),
        ("Zerar BOVAW32", "BOVAW32", [Event("closed")]),
        ("Sair da operação em VALE3", "VALE3", [Event("closed")]),
        ("Parcial realizada em ITUB4 +8%", "ITUB4", [Event("partial_exit", None, 8.0)]),
        ("Alvo 1 atingido ✅ +10%. Parcial realizada, stop na entrada.", None,
         [Event("target_hit", 1, 10.0), Event("partial_exit"), Event("stop_moved", breakeven=True)]),
        # An entry with neither stop nor target that reads as a follow-up is the follow-up.
        ("PETR4 stop movido para 25,00", "PETR4", [Event("stop_moved", price=25.0)]),
    ],
)
def test_follow_up_classes(text: str, asset: str | None, events: list[Event]) -> None:
    assert parse(text) == FollowUp(asset, tuple(events))


@pytest.mark.parametrize("text", [
    "Encerramos o dia por aqui, pessoal!",
    "Fechamos o dia. Obrigado a todos que acompanham o canal! 🙏",
    "Bom dia! Vamos fazer uma live hoje às 19h.",
    "Parcial realizada, ajustem o stop.",  # a partial exit; "ajustem o stop" names no new stop
    "ATIVO: PETR4 STOP: 20.00",  # a stop without "novo" / a move: not a move
    "Aguardando pullback para entrada em BBDC4",
])
def test_chatter_is_not_a_lifecycle_event_beyond_what_it_says(text: str) -> None:
    result = parse(text)
    assert result is None or (isinstance(result, FollowUp) and [e.event_type for e in result.events] == ["partial_exit"])


# -- numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["1" + "0" * 12, "1" + "0" * 400, "1.000.000.000.000,00", "9" * 13 + ",5", "1,2,3", "1.2.3"])
def test_absurd_or_malformed_numbers_are_not_prices(raw: str) -> None:
    assert parse_number(raw) is None


def test_twelve_integer_digits_are_a_price() -> None:
    assert parse_number("9" * 12) == 999_999_999_999.0


@pytest.mark.parametrize("text", ["Ativo: PETR4\nCompra: 1" + "0" * 400, "Ativo: PETR4\nCompra: 1" + "0" * 12 + ",00",
                                  "Ativo: PETR4\nCompra: inf", "Ativo: PETR4\nCompra: NaN", "Ativo: PETR4\nCompra: 1e308"])
def test_absurd_entry_prices_are_not_signals(text: str) -> None:
    assert not isinstance(parse(text), Signal)


def test_an_unreadable_numbered_target_is_not_read_as_an_unnumbered_one() -> None:
    # "Alvo 1: <absurd>" once gave target 1 = 1.0 (the "1" of the label read as a price).
    signal = parse("Ativo: VALE3\nCompra: 10,00\nAlvo 1: 1" + "0" * 400 + "\nStop: 9,00")
    assert isinstance(signal, Signal) and (signal.target_1, signal.target_final) == (None, None)
