"""TP Capital signal parser: message text in, a `Signal`, a `FollowUp` or nothing out (pure).

A signal names a B3 ticker and a buy price:

    🟢Swing Trade
    Ativo: BOVAW32
    Compra: 1,04 a 1,06
    Alvo 1: 1,15   Alvo 2: 2,15   Alvo final: 3,50
    Stop: 0,70

Labels are matched case-insensitively, the first occurrence of each wins. Besides the old labels
(ATIVO/ATIVA, COMPRA, ALVO n, ALVO FINAL/GERAL, STOP) the ones the old format doc promised are read
too (Papel, Ticker, Entrada, Buy, TP/TPn, Target n, SL, Stop Loss), and the label may be followed
by ":", "=", "-" or nothing ("COMPRA 0.25-0.27", which the old parser missed).

The type comes from the header, the first non-empty line ("🟢Swing Trade", "Day Trade 🔵"): a
Swing Trade post that mentions day trade in its body ("não faça day trade") stays Swing Trade.
Compatibility with the old parser, kept on purpose: without a Day Trade header the type is "Swing
Trade"; with no "Alvo final" the last numbered target is the final one ("Alvo 1" alone → final =
target 1).

Follow-ups ("BOVAW22 ALVO 1 ATINGIDO ✅ +17,02%", "CYREW296 stop -25%") are not signals: they
are lifecycle events of the latest open signal for the asset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SWING_TRADE = "Swing Trade"
DAY_TRADE = "Day Trade"

# A B3 ticker: 3–6 letters then 1–4 digits (PETR4, BOVA11, BOVAW32, KLBNK177, WINFUT1, WINZ25).
_TICKER = r"[A-Za-z]{3,6}[0-9]{1,4}"
_TICKER_RE = re.compile(rf"^{_TICKER}$")
# A number as written in the channel: "1,04", "1.250,50", "25.50", "128.450", "120500".
_NUMBER = r"[0-9]+(?:[.,][0-9]+)*"
_RANGE_WORD = r"(?:-|–|—|a|até|ate|to)"
# The value after a label: one number or a range of two, optionally behind "R$" / "DE".
_PRICE_VALUE = rf"(?:de\s*[:=]?\s*)?(?:r\$\s*)?(?P<low>{_NUMBER})(?:\s*{_RANGE_WORD}\s*(?:r\$\s*)?(?P<high>{_NUMBER}))?"
# What may sit between a label and its value.
_SEP = r"\s*[:=\-–]?\s*"

_FLAGS = re.IGNORECASE | re.UNICODE
# \b does not work before emoji-prefixed labels ("💰COMPRA"), so labels are delimited by "not a letter".
_L = r"(?<![A-Za-zÀ-ÿ0-9])"
_R = r"(?![A-Za-zÀ-ÿ])"

_ASSET_RE = re.compile(rf"{_L}(?:ativ[oa]|papel|ticker){_R}\s*[:=\-–]?\s*(?P<asset>[A-Za-z0-9]+)", _FLAGS)
# "COMPRA: 25,50 a 26", "Entrada 38,50", "BUY PETR4 8.50-8.55", "COMPRA: PETR4 @ R$ 38.50".
_BUY_RE = re.compile(
    rf"{_L}(?:compra|entrada|buy){_R}{_SEP}(?:(?P<ticker>{_TICKER})\s*@?\s*)?{_PRICE_VALUE}", _FLAGS
)
_TARGET_N_RE = re.compile(
    rf"{_L}(?:alvo|target|tp|t)\s*(?P<n>[1-9]){_R}{_SEP}(?:r\$\s*)?(?P<value>{_NUMBER})", _FLAGS
)
_TARGET_FINAL_RE = re.compile(
    rf"{_L}(?:alvo|target)\s+(?:final|geral){_R}{_SEP}(?:r\$\s*)?(?P<value>{_NUMBER})", _FLAGS
)
# A single unnumbered target ("Alvo: 125,00", "TP: 39,00", "Target 40"); "Alvos:" lists several.
_TARGET_ONE_RE = re.compile(rf"{_L}(?:alvo|target|tp){_R}{_SEP}(?:r\$\s*)?(?P<value>{_NUMBER})", _FLAGS)
_TARGET_LIST_RE = re.compile(
    rf"{_L}alvos{_R}{_SEP}(?P<values>{_NUMBER}(?:\s*[,;/]\s+{_NUMBER})*)", _FLAGS
)
_STOP_RE = re.compile(rf"{_L}(?:stop\s+loss|stop|sl){_R}{_SEP}(?:r\$\s*)?(?P<value>{_NUMBER})", _FLAGS)
# The header starts with the type, after any emoji or punctuation ("🔵 DAY TRADE", "#DayTrade").
_DAY_TRADE_HEADER_RE = re.compile(rf"^\W*day\s*-?\s*trade{_R}", _FLAGS)
_LEADING_TICKER_RE = re.compile(rf"(?<![A-Za-z0-9])(?P<asset>[A-Z]{{3,6}}[0-9]{{1,4}})(?![A-Za-z0-9])")

# Follow-ups: "<TICKER> ALVO 1 ATINGIDO", "Alvo final atingido em ITUB4", "<TICKER> stop".
_PERCENT_RE = re.compile(r"(?P<pct>[+\-−]?\s*[0-9]+(?:,[0-9]+|\.[0-9]+)?)\s*%")
_HIT_RE = re.compile(rf"{_L}alvo\s*(?P<which>[1-9]|final|geral)\s+(?:foi\s+)?atingido{_R}", _FLAGS)
_STOP_HIT_RE = re.compile(rf"^\W*(?P<asset>{_TICKER})\s+stop(?:\s+atingido)?{_R}", _FLAGS)


@dataclass(frozen=True, slots=True)
class Signal:
    asset: str
    signal_type: str
    buy_min: float | None
    buy_max: float | None
    target_1: float | None
    target_2: float | None
    target_final: float | None
    stop: float | None


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A lifecycle event: `event_type` is target_hit / final_target_hit / stop_hit."""

    asset: str
    event_type: str
    target_number: int | None
    percentage: float | None

    @property
    def status(self) -> str:
        """The status the signal moves to."""
        if self.event_type == "stop_hit":
            return "stopped"
        if self.event_type == "final_target_hit":
            return "final_target_hit"
        return f"target_{self.target_number}_hit"


def parse_number(raw: str) -> float | None:
    """A pt-BR or en number: "1,04" → 1.04, "1.250,50" → 1250.5, "128.450" → 128450, "25.50" → 25.5."""
    raw = raw.strip()
    if not raw:
        return None
    if "," in raw:
        # pt-BR: points group thousands, the (last) comma is the decimal mark.
        integer, _, decimals = raw.rpartition(",")
        if "," in integer:
            return None
        return float(integer.replace(".", "") + "." + decimals)
    if re.fullmatch(r"[1-9][0-9]{0,2}(?:\.[0-9]{3})+", raw):
        # "128.450" / "1.250.000": groups of three after a non-zero lead are thousands.
        return float(raw.replace(".", ""))
    if raw.count(".") > 1:
        return None
    return float(raw)


def is_ticker(word: str) -> bool:
    return bool(_TICKER_RE.match(word))


def parse(text: str) -> Signal | FollowUp | None:
    """Read a message: a signal, a follow-up, or None for anything else (chit-chat, analysis, notices)."""
    if not text or not any(c.isdigit() for c in text):
        # Signals and follow-ups all carry a ticker (letters + digits): most chatter stops here.
        return None
    signal = parse_signal(text)
    if signal is not None:
        return signal
    return parse_follow_up(text)


def parse_signal(text: str) -> Signal | None:
    buy = _BUY_RE.search(text)
    if buy is None:
        return None
    buy_min = parse_number(buy.group("low"))
    buy_max = parse_number(buy.group("high")) if buy.group("high") else buy_min
    if buy_min is None or buy_max is None:
        return None
    asset = _asset(text, buy)
    if asset is None:
        return None

    numbered: dict[int, float] = {}
    for match in _TARGET_N_RE.finditer(text):
        n = int(match.group("n"))
        value = parse_number(match.group("value"))
        if value is not None and n not in numbered:
            numbered[n] = value
    final_match = _TARGET_FINAL_RE.search(text)
    target_final = parse_number(final_match.group("value")) if final_match else None
    if not numbered:
        listed = _TARGET_LIST_RE.search(text)
        if listed:
            values = [parse_number(v) for v in re.split(r"\s*[,;/]\s+", listed.group("values"))]
            numbered = {i + 1: v for i, v in enumerate(values) if v is not None}
        else:
            single = _TARGET_ONE_RE.search(text)
            if single and (value := parse_number(single.group("value"))) is not None:
                numbered = {1: value}
    target_1 = numbered.get(1)
    target_2 = numbered.get(2)
    if target_final is None and numbered:
        # Old behaviour: the last target given is the final one.
        target_final = numbered[max(numbered)]
    stop_match = _STOP_RE.search(text)
    stop = parse_number(stop_match.group("value")) if stop_match else None
    return Signal(
        asset=asset,
        signal_type=_signal_type(text),
        buy_min=buy_min,
        buy_max=buy_max,
        target_1=target_1,
        target_2=target_2,
        target_final=target_final,
        stop=stop,
    )


def _signal_type(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    return DAY_TRADE if _DAY_TRADE_HEADER_RE.match(header) else SWING_TRADE


def _asset(text: str, buy: re.Match[str]) -> str | None:
    labelled = _ASSET_RE.search(text)
    if labelled is not None:
        # A label whose value is not a ticker ("ATIVO: INVALID") means no asset, not the label.
        value = labelled.group("asset")
        return value.upper() if is_ticker(value) else None
    if buy.group("ticker"):
        return buy.group("ticker").upper()
    # No label: the first upper-case ticker in the text ("PETR4\nCOMPRA: 28.50 a 29.00").
    leading = _LEADING_TICKER_RE.search(text)
    return leading.group("asset") if leading else None


def parse_follow_up(text: str) -> FollowUp | None:
    pct = _PERCENT_RE.search(text)
    percentage = None
    if pct is not None:
        percentage = float(pct.group("pct").replace("−", "-").replace(" ", "").replace(",", "."))
    stop = _STOP_HIT_RE.search(text)
    if stop is not None:
        return FollowUp(stop.group("asset").upper(), "stop_hit", None, percentage)
    hit = _HIT_RE.search(text)
    if hit is None:
        return None
    ticker = _LEADING_TICKER_RE.search(text)
    if ticker is None:
        return None
    which = hit.group("which").lower()
    if which in ("final", "geral"):
        return FollowUp(ticker.group("asset"), "final_target_hit", None, percentage)
    return FollowUp(ticker.group("asset"), "target_hit", int(which), percentage)
