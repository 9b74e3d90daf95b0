"""TP Capital signal parser: message text in, a `Signal`, a `FollowUp` or nothing out (pure).

A **signal** names a B3 ticker and an entry price:

    🟢Swing Trade
    Ativo: BOVAW32
    Compra: 1,04 a 1,06
    Alvo 1: 1,15   Alvo 2: 2,15   Alvo final: 3,50
    Stop: 0,70

Labels are matched case-insensitively and without accents ("Operação" = "operacao"); the first
usable occurrence of each wins. Entry labels: COMPRA/Comprar/Compre/Buy/Long (a long), VENDA/
Vender/Sell/Short (a short), Entrada/Entry (the side comes from a "SINAL DE VENDA"/"short" cue,
else from the stop: above the entry means a short). The entry is a price, a range ("1,04 a 1,06",
"0,25-0,27", "52,40 até 53,10") or open-ended: "até 0,88" / "abaixo de R$ 21,00" give only
`buy_max`, "acima de X" / "a partir de X" only `buy_min`. For a short, `buy_min`/`buy_max` hold the
sell range (the column names are the old contract's). Targets: ALVO n / TP n / T n / Target n,
ALVO FINAL/GERAL, "Alvos: a, b, c", a lone "Alvo: x"; with no final target the last numbered one
is final (the old behaviour). Stop: STOP / SL / Stop Loss. A short needs a stop or a target (a bare
"vender PETR4 a 30" is how channels say "close it").

A **follow-up** is one or more lifecycle events, with the ticker it names (or none):
target_hit (with its number), final_target_hit, stop_hit, stop_moved (to a price, or to
breakeven), cancelled, closed, partial_exit; the first percentage in the text goes to the first
event. Which signal a follow-up belongs to is decided in the database from the messages' dates
and replies (db/sql/tp_capital/008), never here.

Every pattern runs in linear time: repetitions are bounded, and no two adjacent or nested
repetitions can match the same characters in more than a bounded number of ways. Numbers with
more than 12 integer digits are not prices.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

SWING_TRADE = "Swing Trade"
DAY_TRADE = "Day Trade"
LONG = "long"
SHORT = "short"

# -- the ticker grammar ----------------------------------------------------------------------
#
# B3 codes, upper case:
#   shares, units, ETFs, BDRs: a 4-character issuer code + a class number, optionally "F" for the
#       odd-lot market: PETR4, VALE3, B3SA3, TAEE11, BOVA11, AAPL34, M1TA34, PETR4F. The issuer
#       code is letters, sometimes with one digit inside (B3SA, M1TA, A1MD), never at its end.
#       Classes: 3 ON, 4 PN, 5-8 PNA-PND, 11 units/ETFs/FIIs, 31-35 and 39 BDRs. Rights (1, 2)
#       and receipts (9, 10, 12...) are left out: nobody signals them, and "ALVO1" or "TOP10"
#       must not become tickers.
#   options: issuer code + series letter (A-X: the expiry month, calls A-L, puts M-X) + strike
#       number: BOVAW32, KLBNK177, CYREW296, PETRA290.
#   futures: a 3-letter root (or DI1) + month letter (F G H J K M N Q U V X Z) + 2-digit year:
#       WINZ25, DOLF26, DI1F27; and the continuous contracts of the common roots: WINFUT,
#       WDOFUT, WINFUT1.
# A word of letters only is never a ticker, except these continuous-contract codes, and nor is a
# number (a ticker starts with a letter).
_ISSUER = r"[A-Z](?:[A-Z]{3}|[0-9][A-Z]{2}|[A-Z][0-9][A-Z])"
_SHARE_CLASS = r"(?:[3-8]|11|3[1-5]|39)"
_OPTION_SERIES = r"[A-X]"
_FUTURE_MONTH = r"[FGHJKMNQUVXZ]"
_CONTINUOUS_ROOTS = r"(?:WIN|WDO|IND|DOL|BGI|CCM|ICF|SFI|ETH|BIT)"
TICKER_GRAMMAR = (
    rf"{_ISSUER}{_SHARE_CLASS}F?"
    rf"|{_ISSUER}{_OPTION_SERIES}[0-9]{{1,4}}"
    rf"|(?:[A-Z]{{3}}|DI1){_FUTURE_MONTH}[0-9]{{2}}"
    rf"|{_CONTINUOUS_ROOTS}FUT[0-9]?"
)
_TICKER_RE = re.compile(rf"(?:{TICKER_GRAMMAR})")
MAX_TICKER_LENGTH = 10


def is_ticker(code: str) -> bool:
    """True when `code` (as written: upper case) is a B3 ticker by the grammar above."""
    return len(code) <= MAX_TICKER_LENGTH and _TICKER_RE.fullmatch(code) is not None


# A word that could be a ticker: 4 to 10 letters/digits, starting with a letter, standing alone.
_WORD = r"[A-Za-z][A-Za-z0-9]{3,9}"
_CANDIDATE_RE = re.compile(rf"(?<![A-Za-z0-9]){_WORD}(?![A-Za-z0-9])")


def find_ticker(text: str) -> str | None:
    """The first upper-case ticker in `text` ("PETR4 ALVO 1", "... em ITUB4!")."""
    for match in _CANDIDATE_RE.finditer(text):
        word = match.group()
        if word.isupper() and is_ticker(word):
            return word
    return None


# -- numbers ---------------------------------------------------------------------------------

MAX_INTEGER_DIGITS = 12
# As written in the channel: "1,04", "1.250,50", "25.50", "128.450", "120500". Bounded groups, and
# digits on neither side, so a run of 60,000 digits is rejected in one step instead of searched
# (and so is "1e308": not a price either). Applied to lower-cased text.
_NUMBER = r"(?<![0-9])[0-9]{1,12}(?:[.,][0-9]{1,12}){0,5}(?![0-9]|e[+\-]?[0-9])"
_THOUSANDS_RE = re.compile(r"[1-9][0-9]{0,2}(?:\.[0-9]{3}){1,4}")


def parse_number(raw: str) -> float | None:
    """A pt-BR or en number: "1,04" → 1.04, "1.250,50" → 1250.5, "128.450" → 128450, "25.50" → 25.5.

    None for what is not a price: malformed, non-finite, or more than 12 integer digits.
    """
    raw = raw.strip()
    if not raw:
        return None
    if "," in raw:
        # pt-BR: points group thousands, the (last) comma is the decimal mark.
        integer, _, decimals = raw.rpartition(",")
        if "," in integer:
            return None
        integer = integer.replace(".", "")
    elif _THOUSANDS_RE.fullmatch(raw):
        # "128.450" / "1.250.000": groups of three after a non-zero lead are thousands.
        integer, decimals = raw.replace(".", ""), ""
    elif raw.count(".") > 1:
        return None
    else:
        integer, _, decimals = raw.partition(".")
    if not integer.isdigit() or len(integer.lstrip("0")) > MAX_INTEGER_DIGITS or (decimals and not decimals.isdigit()):
        return None
    value = float(f"{integer}.{decimals}" if decimals else integer)
    return value if math.isfinite(value) else None


# -- text normalisation ----------------------------------------------------------------------

_COMBINING_MARKS = re.compile("[\u0300-\u036f]")


def fold(text: str) -> str:
    """The text without accents ("Operação" → "Operacao"), case kept. (NFD, not NFKD: "¹" must
    not become a digit.)"""
    if text.isascii():
        return text
    return _COMBINING_MARKS.sub("", unicodedata.normalize("NFD", text))


# Keyword patterns run on the folded, lower-cased text (case-insensitive matching costs Python's
# `re` about twice as much), written once in ASCII. Tickers are read from the folded text with its
# case: an unlabelled ticker must be written in capitals.
# \b is not used: labels are delimited by "not a letter or digit" on both sides ("💰COMPRA",
# "TP1:" and "Alvo 1:" all work, "compras" is not "compra").
_L = r"(?<![a-z0-9])"
_R = r"(?![a-z])"
_SEP = r"\s{0,10}[:=\-–]?\s{0,10}"
_MONEY = r"(?:r\$\s{0,3})?"

# -- signals ---------------------------------------------------------------------------------

_LONG_LABELS = ("compra", "comprar", "compre", "compramos", "buy", "long")
_SHORT_LABELS = ("venda", "vender", "vendemos", "sell", "short")
_NEUTRAL_LABELS = ("entrada", "entrar", "entry")
_ENTRY_LABEL = "|".join(sorted(_LONG_LABELS + _SHORT_LABELS + _NEUTRAL_LABELS, key=len, reverse=True))
_RANGE_WORD = r"(?:-|–|—|a|ate|to)"
_UP_TO = r"(?:ate|abaixo\s{1,3}de|menor\s{1,3}que|no\s{1,3}maximo|max(?:imo)?)"
_FROM = r"(?:acima\s{1,3}de|a\s{1,3}partir\s{1,3}de|maior\s{1,3}que|no\s{1,3}minimo)"
# "COMPRA: 25,50 a 26", "Entrada 38,50", "BUY PETR4 8.50-8.55", "COMPRA: PETR4 @ R$ 38.50",
# "COMPRA DE: 12.50 ATÉ 13.00", "Compra até 0,88", "comprar abaixo de R$ 21,00".
_ENTRY_RE = re.compile(
    rf"{_L}(?P<label>{_ENTRY_LABEL}){_R}{_SEP}"
    rf"(?:(?P<ticker>[a-z]{{1,6}}[0-9][a-z0-9]{{0,6}})\s{{0,3}}@?\s{{0,3}})?"
    rf"(?:de\s{{0,3}}[:=]?\s{{0,3}}|em\s{{1,3}}|a\s{{1,3}})?"
    rf"(?:(?P<up_to>{_UP_TO})\s{{1,3}}|(?P<from>{_FROM})\s{{1,3}})?"
    rf"{_MONEY}(?P<low>{_NUMBER})"
    rf"(?:\s{{0,3}}{_RANGE_WORD}\s{{0,3}}{_MONEY}(?P<high>{_NUMBER}))?"
)
_ASSET_RE = re.compile(rf"{_L}(?:ativ[oa]|papel|ticker|acao|codigo){_R}{_SEP}(?P<asset>[a-z0-9]{{1,12}})")
_TARGET_N_RE = re.compile(rf"{_L}(?:alvo|target|tp|t)\s{{0,3}}(?P<n>[1-9]){_R}{_SEP}{_MONEY}(?P<value>{_NUMBER})")
_TARGET_FINAL_RE = re.compile(rf"{_L}(?:alvo|target)\s{{1,3}}(?:final|geral){_R}{_SEP}{_MONEY}(?P<value>{_NUMBER})")
# A single unnumbered target ("Alvo: 125,00", "TP: 39,00", "Target 40"); "Alvos:" lists several.
# Not the number of a numbered target whose value was unreadable ("Alvo 1: <absurd>").
_TARGET_ONE_RE = re.compile(rf"{_L}(?:alvo|target|tp){_R}{_SEP}{_MONEY}(?P<value>{_NUMBER})(?!\s{{0,3}}[:=])")
_LIST_SEP = r"\s{0,3}[,;/]\s{1,3}"
_TARGET_LIST_RE = re.compile(rf"{_L}alvos{_R}{_SEP}(?P<values>{_NUMBER}(?:{_LIST_SEP}{_NUMBER}){{0,9}})")
_LIST_SEP_RE = re.compile(_LIST_SEP)
_STOP_RE = re.compile(rf"{_L}(?:stop\s{{1,3}}loss|stop|sl){_R}{_SEP}{_MONEY}(?P<value>{_NUMBER})")
# The header starts with the type, after any emoji or punctuation ("🔵 DAY TRADE", "#DayTrade").
_DAY_TRADE_HEADER_RE = re.compile(rf"\W{{0,20}}day\s{{0,3}}-?\s{{0,3}}trade{_R}")
_SHORT_HEADER_RE = re.compile(rf"\W{{0,20}}(?:sinal\s{{1,3}}de\s{{1,3}})?(?:venda|sell|short){_R}")
_SHORT_CUE_RE = re.compile(
    rf"{_L}(?:(?:sinal|operacao|trade|posicao)\s{{1,3}}(?:de\s{{1,3}})?venda|venda\s{{1,3}}a\s{{1,3}}descoberto|short){_R}"
)


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
    # "long" or "short"; for a short, buy_min/buy_max are the sell range.
    side: str = LONG

    @property
    def has_exits(self) -> bool:
        return self.stop is not None or self.target_final is not None


def _header(text: str) -> str:
    """The first non-empty line (without splitting a 64 KiB text into lines)."""
    start = 0
    while True:
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        if line.strip() or end < 0:
            return line
        start = end + 1


def _entry(lower: str) -> tuple[re.Match[str], float | None, float | None] | None:
    for match in _ENTRY_RE.finditer(lower):
        low = parse_number(match.group("low"))
        high = parse_number(match.group("high")) if match.group("high") else None
        if low is None or (match.group("high") and high is None):
            continue
        if match.group("up_to"):
            return match, None, low
        if match.group("from"):
            return match, low, None
        return match, low, high if high is not None else low
    return None


def _labelled_asset(lower: str) -> str | None:
    """The value of the first Ativo/Papel/Ticker label that is a ticker; "" when there are labels
    but none names a ticker ("ATIVO: INVALID", "o ativo está..."): that means no asset, not the
    first ticker-looking word; None without labels."""
    labelled = False
    for match in _ASSET_RE.finditer(lower):
        value = match.group("asset").upper()
        if is_ticker(value):
            return value
        labelled = True
    return "" if labelled else None


def _asset(lower: str, folded: str, entry: re.Match[str]) -> str | None:
    labelled = _labelled_asset(lower)
    if labelled is not None:
        return labelled or None
    ticker = entry.group("ticker")
    if ticker and is_ticker(ticker.upper()):
        return ticker.upper()
    # No label: the first upper-case ticker in the text ("PETR4\nCOMPRA: 28.50 a 29.00").
    return find_ticker(folded)


def _targets(lower: str) -> tuple[float | None, float | None, float | None]:
    numbered: dict[int, float] = {}
    for match in _TARGET_N_RE.finditer(lower):
        n = int(match.group("n"))
        value = parse_number(match.group("value"))
        if value is not None and n not in numbered:
            numbered[n] = value
    final_match = _TARGET_FINAL_RE.search(lower)
    target_final = parse_number(final_match.group("value")) if final_match else None
    if not numbered:
        listed = _TARGET_LIST_RE.search(lower)
        if listed:
            values = [parse_number(v) for v in _LIST_SEP_RE.split(listed.group("values"))]
            numbered = {i + 1: v for i, v in enumerate(values) if v is not None}
        else:
            single = _TARGET_ONE_RE.search(lower)
            if single and (value := parse_number(single.group("value"))) is not None:
                numbered = {1: value}
    if target_final is None and numbered:
        # Old behaviour: the last target given is the final one.
        target_final = numbered[max(numbered)]
    return numbered.get(1), numbered.get(2), target_final


def _side(lower: str, label: str, low: float | None, high: float | None, stop: float | None) -> str:
    if label in _LONG_LABELS:
        return LONG
    if label in _SHORT_LABELS:
        return SHORT
    if _SHORT_HEADER_RE.match(_header(lower)) or _SHORT_CUE_RE.search(lower):
        return SHORT
    top = max(v for v in (low, high) if v is not None)
    return SHORT if stop is not None and stop > top else LONG


def _signal(lower: str, folded: str) -> Signal | None:
    found = _entry(lower)
    if found is None:
        return None
    entry, buy_min, buy_max = found
    asset = _asset(lower, folded, entry)
    if asset is None:
        return None
    target_1, target_2, target_final = _targets(lower)
    stop_match = _STOP_RE.search(lower)
    stop = parse_number(stop_match.group("value")) if stop_match else None
    side = _side(lower, entry.group("label"), buy_min, buy_max, stop)
    signal_type = DAY_TRADE if _DAY_TRADE_HEADER_RE.match(_header(lower)) else SWING_TRADE
    signal = Signal(asset, signal_type, buy_min, buy_max, target_1, target_2, target_final, stop, side)
    if side == SHORT and not signal.has_exits:
        return None
    return signal


# -- follow-ups ------------------------------------------------------------------------------

TARGET_HIT = "target_hit"
FINAL_TARGET_HIT = "final_target_hit"
STOP_HIT = "stop_hit"
STOP_MOVED = "stop_moved"
CANCELLED = "cancelled"
CLOSED = "closed"
PARTIAL_EXIT = "partial_exit"
EVENT_TYPES = (TARGET_HIT, FINAL_TARGET_HIT, STOP_HIT, STOP_MOVED, CANCELLED, CLOSED, PARTIAL_EXIT)
# Events after which a signal takes no more follow-ups by ticker: its lifecycle is over.
TERMINAL_EVENTS = (FINAL_TARGET_HIT, STOP_HIT, CANCELLED, CLOSED)


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle event of a follow-up."""

    event_type: str
    # target_hit: which target (None when the text does not say: the database counts it as the
    # signal's next one).
    target_number: int | None = None
    percentage: float | None = None
    # stop_moved: the new stop, or `breakeven` (the signal's entry price, known once linked).
    price: float | None = None
    breakeven: bool = False


@dataclass(frozen=True, slots=True)
class FollowUp:
    """Lifecycle events posted in one message, and the ticker it names (None: no ticker)."""

    asset: str | None
    events: tuple[Event, ...]

    @property
    def event_type(self) -> str:
        return self.events[0].event_type


_GAP = r"[^a-z0-9]{0,12}"
_WHICH = r"(?P<which>[1-9]|final|geral|maximo|max)"
_HIT_WORD = r"(?:atingid[oa]s?|batid[oa]s?|alcancad[oa]s?|acertad[oa]s?|conquistad[oa]s?|realizad[oa]s?|hit)"
# (Alternatives that share group names are separate patterns: Python's `re` wants unique names.)
_TARGET_HIT_RES = (
    # "ALVO 1 ATINGIDO ✅", "Alvo final atingido em ITUB4", "Alvo 2 batido", "TP1 hit"
    re.compile(rf"{_L}(?:alvo|target|tp)\s{{0,3}}{_WHICH}?{_R}{_GAP}(?:(?:foi|foram|ja)\s{{1,3}})?{_HIT_WORD}{_R}"),
    # "atingiu o alvo 1", "bateu alvo final", "hit target 2"
    re.compile(rf"{_L}(?:atingi(?:u|mos)|bat(?:eu|emos)|alcanc(?:ou|amos)|hit)\s{{1,3}}(?:(?:o|no|nosso)\s{{1,3}})?"
               rf"(?:alvo|target|tp)\s{{0,3}}{_WHICH}?{_R}"),
)
_STOP_WORD = r"(?:stop|sl)(?:\s{1,3}loss)?"
_STOP_HIT_RE = re.compile(
    rf"{_L}{_STOP_WORD}\s{{0,3}}(?:(?:foi|fomos)\s{{1,3}})?(?:atingid[oa]|acionad[oa]|executad[oa]|batid[oa]|hit){_R}"
    rf"|{_L}stop(?:ad[oa]s?|ou|amos|ei|ped){_R}"
)
# The old channel form "CYREW296 stop\n-25%": a ticker, "stop", and no word after it on that line.
_BARE_STOP_RE = re.compile(rf"\W{{0,10}}(?P<asset>[a-z][a-z0-9]{{3,9}})\s{{1,3}}stop(?:\s{{1,3}}loss)?{_R}")
_LETTER_RE = re.compile(r"[a-z]")
_BREAKEVEN = (r"(?P<be>break\s{0,2}-?\s{0,2}even|0\s{0,2}x\s{0,2}0|zero\s{1,3}a\s{1,3}zero"
              r"|(?:(?:preco|ponto)\s{1,3}(?:de\s{1,3})?)?entrada|be(?![a-z0-9]))")
_NEW_STOP = rf"(?:{_BREAKEVEN}|{_MONEY}(?P<price>{_NUMBER}))"
_TO = r"(?:para|pra|p/|em|no|na|ao|->|→)"
_ARTICLE = r"(?:(?:o|a|no|na)\s{1,3})?"
_MOVED = r"(?:movid[oa]|ajustad[oa]|alterad[oa]|elevad[oa]|subiu|reposicionad[oa]|atualizad[oa]|levad[oa]|colocad[oa]|trazid[oa])"
_MOVE_VERB = (r"(?:mov(?:er|emos|am|a|em|endo)|sub(?:ir|imos|a|am|indo)|ajust(?:ar|amos|em|e|ando)|alter(?:ar|amos|em|e)"
              r"|elev(?:ar|amos|em|e)|lev(?:ar|amos|em|e)|coloc(?:ar|amos|quem|que)|reposicion(?:ar|amos|em|e)"
              r"|atualiz(?:ar|amos|em|e)|traz(?:er|emos)|trag(?:a|am))")
_STOP_MOVED_RES = (
    # "Novo stop: 1,10"
    re.compile(rf"{_L}novo\s{{1,3}}{_STOP_WORD}{_R}{_SEP}(?:(?:em|de|para|no|na)\s{{1,3}})?{_ARTICLE}{_NEW_STOP}"),
    # "Stop loss movido para breakeven", "stop na entrada", "Stop em 25,00"
    re.compile(rf"{_L}{_STOP_WORD}\s{{1,3}}(?:(?:foi|sera|esta)\s{{1,3}})?(?:{_MOVED}\s{{1,3}})?{_TO}\s{{0,3}}"
               rf"{_ARTICLE}{_NEW_STOP}"),
    # "Subam o stop para 1,10", "colocar o stop no 0x0", "mover stop para o ponto de entrada"
    re.compile(rf"{_L}{_MOVE_VERB}\s{{1,3}}(?:(?:o|nosso|os)\s{{1,3}})?{_STOP_WORD}\s{{0,3}}(?:{_TO}\s{{0,3}})?"
               rf"{_ARTICLE}{_NEW_STOP}"),
)
_CANCELLED_RE = re.compile(
    rf"{_L}(?:cancelad[oa]s?|cancel(?:ar|amos|em|e|ei|ou)|canceled|cancelled|anulad[oa]s?|abortad[oa]"
    rf"|desconsider(?:ar|em|e|ado|ada)|ignor(?:ar|em|e)\s{{1,3}}(?:(?:o|a|esse|este|essa|esta)\s{{1,3}})?"
    rf"(?:sinal|entrada|operacao|ordem|call)){_R}"
)
# "Encerramos o dia" is not a close.
_NOT_A_TRADE = r"(?!\s{1,3}(?:o\s{1,3}|a\s{1,3})?(?:dia|pregao|semana|mes|ano|live|transmissao|video|aula)(?![a-z]))"
_CLOSED_RE = re.compile(
    rf"{_L}(?:encerr(?:ar|ad[oa]s?|amos|em|e|ando|ou)|zer(?:ar|ad[oa]s?|amos|em|ando|ou)"
    rf"|finaliz(?:ar|ad[oa]s?|amos)|liquid(?:ar|ad[oa]s?|amos)){_R}{_NOT_A_TRADE}"
    rf"|{_L}(?:sa(?:ir|ia|iam|imos|indo|ida)|fech(?:ar|ad[oa]|amos|em|ando|ou))\s{{1,3}}(?:(?:d[aoe]|n[ao]|a|o)\s{{1,3}})?"
    rf"(?:operacao|posicao|trade|ativo|papel){_R}"
)
_PARTIAL_RE = re.compile(rf"{_L}parcia(?:l|is){_R}")
_PERCENT_RE = re.compile(r"(?P<sign>[+\-−])?\s{0,2}(?<![0-9.,])(?P<number>[0-9]{1,6}(?:[.,][0-9]{1,4})?)\s{0,2}%")


def _percentage(lower: str) -> float | None:
    match = _PERCENT_RE.search(lower)
    if match is None:
        return None
    value = float(match.group("number").replace(",", "."))
    return -value if match.group("sign") in ("-", "−") else value


def _bare_stop(lower: str) -> str | None:
    """The ticker of "CYREW296 stop\n-25%" (only a result after "stop" on its line)."""
    match = _BARE_STOP_RE.match(lower)
    if match is None or not is_ticker(match.group("asset").upper()):
        return None
    end = lower.find("\n", match.end())
    rest = lower[match.end():] if end < 0 else lower[match.end():end]
    return match.group("asset").upper() if _LETTER_RE.search(rest) is None else None


def _stop_move(lower: str) -> Event | None:
    for pattern in _STOP_MOVED_RES:
        for match in pattern.finditer(lower):
            if match.group("be"):
                return Event(STOP_MOVED, breakeven=True)
            price = parse_number(match.group("price"))
            if price is not None:
                return Event(STOP_MOVED, price=price)
    return None


def _primary_event(lower: str, bare_stop: str | None) -> Event | None:
    if bare_stop is not None or _STOP_HIT_RE.search(lower):
        return Event(STOP_HIT)
    target = next((m for m in (p.search(lower) for p in _TARGET_HIT_RES) if m is not None), None)
    if target is not None:
        which = target.group("which") or ""
        if which in ("final", "geral", "maximo", "max"):
            return Event(FINAL_TARGET_HIT)
        return Event(TARGET_HIT, int(which) if which else None)
    if _CANCELLED_RE.search(lower):
        return Event(CANCELLED)
    if _CLOSED_RE.search(lower):
        return Event(CLOSED)
    if _PARTIAL_RE.search(lower):
        return Event(PARTIAL_EXIT)
    return None


def _follow_up(lower: str, folded: str) -> FollowUp | None:
    # One message may carry several events: "Alvo 1 atingido! Parcial realizada, stop na
    # entrada" is a target hit, a partial exit and a stop moved to breakeven, in that order.
    bare_stop = _bare_stop(lower)
    primary = _primary_event(lower, bare_stop)
    events: list[Event] = []
    if primary is not None:
        pct = _percentage(lower)
        events.append(Event(primary.event_type, primary.target_number, pct) if pct is not None else primary)
        if primary.event_type == TARGET_HIT and _PARTIAL_RE.search(lower):
            events.append(Event(PARTIAL_EXIT))
    if primary is None or primary.event_type in (TARGET_HIT, PARTIAL_EXIT):
        move = _stop_move(lower)
        if move is not None:
            events.append(move)
    if not events:
        return None
    asset = bare_stop or _labelled_asset(lower) or find_ticker(folded)
    return FollowUp(asset, tuple(events))


# -- both ------------------------------------------------------------------------------------

# Every signal and follow-up has a word starting with one of these (unaccented stems): most
# chatter is answered by this one scan of the lower-cased text.
_CUES_RE = re.compile(
    r"(?<![a-z])(?:alvo|target|tp|t[1-9]|stop|sl|compr|vend|buy|sell|long|short|entra|entry|cancel|anulad|abortad"
    r"|desconsider|ignor|encerr|zer|finaliz|liquid|sai|fech|parcia|break|0x0|novo)"
)
_DIGIT_RE = re.compile(r"[0-9]")


def parse(text: str) -> Signal | FollowUp | None:
    """Read a message: a signal, a follow-up, or None for anything else (chit-chat, analysis, notices).

    A message with an entry but no stop or target that reads as a follow-up ("PETR4 stop movido
    para a entrada 25,00") is the follow-up.
    """
    if not text:
        return None
    folded = fold(text)
    lower = folded.lower()
    if _CUES_RE.search(lower) is None:
        return None
    signal = _signal(lower, folded) if _DIGIT_RE.search(lower) else None
    if signal is not None and signal.has_exits:
        return signal
    return _follow_up(lower, folded) or signal
