"""The B3 ticker grammar (parser.is_ticker): every valid code is recognised, words and numbers are not.

Hypothesis builds codes from the grammar's parts (issuer code, class, odd-lot F; option series and
strike; future root, month and year) and checks each is a ticker, alone and inside a signal (labelled
and unlabelled), and that common words, words of letters only and numbers never are.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_api.parser import Signal, find_ticker, is_ticker, parse

LETTERS = string.ascii_uppercase
letter = st.sampled_from(LETTERS)
digit = st.sampled_from(string.digits)

# A 4-character issuer code: letters, or one digit inside it (B3SA, M1TA, A1MD), never at its end.
issuer = st.one_of(
    st.tuples(letter, letter, letter, letter).map("".join),
    st.tuples(letter, digit, letter, letter).map("".join),
    st.tuples(letter, letter, digit, letter).map("".join),
)
share_class = st.sampled_from(["3", "4", "5", "6", "7", "8", "11", "31", "32", "33", "34", "35", "39"])
shares = st.tuples(issuer, share_class, st.sampled_from(["", "F"])).map("".join)
options = st.tuples(issuer, st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWX"),
                    st.integers(1, 9999).map(str)).map("".join)
futures = st.tuples(st.one_of(st.tuples(letter, letter, letter).map("".join), st.just("DI1")),
                    st.sampled_from("FGHJKMNQUVXZ"), st.integers(0, 99).map(lambda y: f"{y:02d}")).map("".join)
tickers = st.one_of(shares, options, futures)

COMMON_WORDS = """
    compra venda alvo stop ativo papel entrada parcial operacao pessoal opera mercado bom dia hoje
    atencao ibovespa invalid message format https twitter youtube confira video foto grafico
    analise tecnica tendencia alta baixa suporte resistencia rompendo breakeven cancelado sinal
    swing trade day target buy sell long short gain loss bolsa dolar juros copom selic ipca cdi
    petrobras vale itau bradesco ambev magazine weg investidor obrigado canal live amanha semana
""".split()


@given(tickers)
def test_every_generated_code_is_a_ticker(code: str) -> None:
    assert is_ticker(code), code


@given(tickers, st.sampled_from(["Ativo: {}", "Papel: {}", "{}", "🟢Swing Trade\n{}", "COMPRA: {} @"]))
def test_every_generated_code_is_read_from_a_signal(code: str, shape: str) -> None:
    text = shape.format(code) + ("\nCompra: 10,50" if "COMPRA" not in shape else " R$ 10,50") + "\nStop: 9,80"
    signal = parse(text)
    assert isinstance(signal, Signal), text
    assert signal.asset == code


@given(tickers)
def test_a_code_in_lower_case_is_read_only_when_labelled(code: str) -> None:
    assert find_ticker(f"veja {code.lower()} hoje") is None
    signal = parse(f"Ativo: {code.lower()}\nCompra: 10,50")
    assert isinstance(signal, Signal) and signal.asset == code


@pytest.mark.parametrize("code", ["PETR4", "VALE3", "B3SA3", "B3SA3F", "PETR4F", "TAEE11", "BOVA11", "AAPL34", "M1TA34",
                                  "BOVAW32", "KLBNK177", "CYREW296", "BEEFW655", "WINZ25", "DOLF26", "DI1F27", "WINFUT",
                                  "WINFUT1", "WDOFUT"])
def test_known_codes(code: str) -> None:
    assert is_ticker(code)


@given(st.one_of(st.sampled_from(COMMON_WORDS), st.text(LETTERS + string.ascii_lowercase, min_size=1, max_size=12)))
def test_words_are_not_tickers(word: str) -> None:
    # The only codes of letters alone are the continuous futures of the common roots (WINFUT).
    continuous = len(word) == 6 and word.upper().endswith("FUT")
    assert not is_ticker(word.upper()) or continuous
    assert find_ticker(word.upper()) is None or continuous


@given(st.one_of(st.integers(0, 10**15).map(str), st.decimals(0, 10**6, places=2).map(str),
                 st.integers(0, 10**6).map(lambda n: f"{n:,}".replace(",", ".")),
                 st.floats(0, 1e6).map(lambda f: f"{f:.2f}".replace(".", ","))))
def test_numbers_are_not_tickers(number: str) -> None:
    assert not is_ticker(number)
    assert find_ticker(number) is None


@pytest.mark.parametrize("word", ["ALVO1", "ALVO2", "TOP10", "FASE2", "TP1", "T2", "SP500", "G20", "Q3", "4T24", "PETR",
                                  "PETR44444", "BOVAW32X", "B3SA", "1PETR4", "PETR0", "PETR1", "PETR2", "PETR9", "PETR10"])
def test_near_misses_are_not_tickers(word: str) -> None:
    assert not is_ticker(word)
