"""GET /report: the scorecard as a page a trader opens on a phone (pt-BR, no external assets).

One section per channel: the summary numbers (stats.py's definitions), a monthly bar chart of
wins, losses and open signals drawn as inline SVG, and the latest signals with their status and
result. The HTML comes from a Jinja template with autoescaping on: channel names and message
texts are whatever a channel posted, so every value is escaped where it is written, and the
page is served with a Content-Security-Policy that runs no script at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jinja2

from .stats import SAO_PAULO, ChannelStats, StatsQuery, fetch_stats, pt_br

LATEST_SIGNALS = 20
# Months shown in a channel's chart (the latest ones, without gaps): a dozen bars stay readable on a
# phone's width; the JSON has every month.
CHART_MONTHS = 12

# The latest signals of each channel found by the stats query, in the same date range, with their
# result (the percentage of their latest event that has one).
LATEST_SQL = """
SELECT s.id, s.channel_id, s.message_date, s.asset, s.side, s.signal_type, s.status, s.raw_message, r.result_pct
FROM unnest($1::bigint[]) AS c(channel_id)
CROSS JOIN LATERAL (
    SELECT s.id, s.channel_id, s.message_id, s.message_date, s.asset, s.side, s.signal_type, s.status, s.raw_message
    FROM tp_capital.tp_capital_signals s
    WHERE s.channel_id = c.channel_id AND s.deleted_at IS NULL
      AND s.message_date >= COALESCE($2::timestamptz, '-infinity')
      AND s.message_date < COALESCE($3::timestamptz, 'infinity')
    ORDER BY s.message_date DESC, s.message_id DESC
    LIMIT $4
) s
LEFT JOIN LATERAL (
    SELECT e.percentage AS result_pct
    FROM tp_capital.signal_events e
    WHERE e.signal_id = s.id AND e.deleted_at IS NULL AND e.percentage IS NOT NULL
    ORDER BY e.message_date DESC, e.message_id DESC, e.seq DESC
    LIMIT 1
) r ON true
ORDER BY s.channel_id, s.message_date DESC, s.message_id DESC
"""

_MONTHS = ("jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez")


def status_label(status: str) -> str:
    """The lifecycle status as the page says it."""
    fixed = {"open": "Aberto", "final_target_hit": "Alvo final atingido", "stopped": "Stopado",
             "cancelled": "Cancelado", "closed": "Encerrado"}
    if status in fixed:
        return fixed[status]
    if status.startswith("target_") and status.endswith("_hit"):
        return f"Alvo {status[len('target_'):-len('_hit')]} atingido"
    return status


def percent(value: float | None) -> str:
    """+12,50% / −6,00% / — (a real minus sign: it reads better and does not wrap)."""
    if value is None:
        return "—"
    sign = "+" if value > 0 else ("−" if value < 0 else "")
    return f"{sign}{pt_br(abs(value))}%"


def rate(value: float | None) -> str:
    return "—" if value is None else f"{pt_br(value * 100, 1)}%"


def hours(value: float | None) -> str:
    return "—" if value is None else f"{pt_br(value, 1)} h"


def month_label(period: str) -> str:
    """"2025-10" → "out/25"."""
    year, month = period.split("-")
    return f"{_MONTHS[int(month) - 1]}/{year[2:]}"


@dataclass
class Bar:
    period: str
    label: str
    wins: int
    losses: int
    open: int
    # Under the bar: the month's abbreviation, and the year under the first bar and each January.
    month: str = ""
    year: str = ""

    @property
    def total(self) -> int:
        return self.wins + self.losses + self.open


@dataclass
class Chart:
    """A stacked bar per month (wins at the bottom, then losses, then open), sized for a viewBox."""

    bars: list[Bar]
    truncated: bool
    width: int = 0
    height: int = 190
    slot: int = 40
    bar: int = 28
    top: int = 8
    bottom: int = 36
    scale_max: int = 1

    def __post_init__(self) -> None:
        # At least 6 slots: one month alone is a bar of normal width, not one filling the page.
        self.width = max(len(self.bars), 6) * self.slot
        self.scale_max = max([b.total for b in self.bars] + [1])

    def px(self, count: int) -> float:
        return round(count * (self.height - self.top - self.bottom) / self.scale_max, 2)

    def segments(self, index: int) -> list[dict[str, Any]]:
        """The rectangles of one bar, bottom up, with their SVG coordinates."""
        bar = self.bars[index]
        x = index * self.slot + (self.slot - self.bar) / 2
        y = self.height - self.bottom
        parts = []
        for kind, count, label in (("win", bar.wins, "ganhos"), ("loss", bar.losses, "perdas"),
                                   ("open", bar.open, "abertos")):
            if count:
                h = self.px(count)
                y -= h
                # The count is written inside the segment when it is tall enough to hold it.
                parts.append({"kind": kind, "x": x, "y": round(y, 2), "h": h, "count": count, "label": label,
                              "text_y": round(y + h / 2 + 4.5, 2) if h >= 16 else None})
        return parts


def _months_between(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    end = tuple(map(int, last.split("-")))
    months = []
    while (year, month) <= end:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def chart(months: list[ChannelStats]) -> Chart:
    """The last CHART_MONTHS months from the channel's first to its last, empty months included."""
    by_period = {m.period: m for m in months}
    periods = _months_between(min(by_period), max(by_period)) if by_period else []
    truncated = len(periods) > CHART_MONTHS
    bars = []
    for index, period in enumerate(periods[-CHART_MONTHS:]):
        m = by_period.get(period)
        year, month = period.split("-")
        bars.append(Bar(period, month_label(period), m.wins if m else 0, m.losses if m else 0, m.open if m else 0,
                        month=_MONTHS[int(month) - 1], year=year if index == 0 or month == "01" else ""))
    return Chart(bars, truncated)


@dataclass
class LatestSignal:
    day: str
    time: str
    asset: str
    side: str
    signal_type: str
    status: str
    status_class: str
    result: str
    result_class: str
    raw_message: str


@dataclass
class ChannelSection:
    channel_id: int
    name: str
    total: ChannelStats
    chart: Chart
    latest: list[LatestSignal] = field(default_factory=list)


def _latest(record: Any) -> LatestSignal:
    status = record["status"]
    result = record["result_pct"]
    when = record["message_date"].astimezone(SAO_PAULO)
    return LatestSignal(
        day=when.strftime("%d/%m/%Y"), time=when.strftime("%H:%M"), asset=record["asset"],
        side="Venda" if record["side"] == "short" else "Compra", signal_type=record["signal_type"],
        status=status_label(status),
        status_class="open" if status == "open" else ("win" if status.startswith(("target_", "final")) else
                                                      "loss" if status == "stopped" else "neutral"),
        result=percent(result),
        result_class="" if result is None or result == 0 else ("win" if result > 0 else "loss"),
        raw_message=record["raw_message"],
    )


async def build_sections(conn: Any, query: StatsQuery) -> list[ChannelSection]:
    """Every channel with signals in `query`, in the order of the stats (by name)."""
    rows = await fetch_stats(conn, query, grouping="report")
    sections: dict[int, ChannelSection] = {}
    months: dict[int, list[ChannelStats]] = {}
    for row in rows:
        if row.period == "all":
            months.setdefault(row.channel_id, [])
            sections[row.channel_id] = ChannelSection(row.channel_id, row.channel, row, chart([]))
        else:
            months.setdefault(row.channel_id, []).append(row)
    for channel_id, section in sections.items():
        section.chart = chart(months[channel_id])
    if sections:
        for record in await conn.fetch(LATEST_SQL, list(sections), query.since, query.until, LATEST_SIGNALS):
            sections[record["channel_id"]].latest.append(_latest(record))
    return list(sections.values())


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("ingest_api.signals", "templates"),
    autoescape=True,  # every {{ value }} is HTML-escaped, attributes included
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(percent=percent, rate=rate, hours=hours)
_page = _templates.get_template("report.html.j2")


def _shown(moment: datetime | None) -> str | None:
    """A bound as the page writes it, São Paulo time (None: not shown, also for the clamped ends
    of the calendar, which São Paulo's offset would push out of it)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(SAO_PAULO).strftime("%d/%m/%Y %H:%M")
    except OverflowError:
        return None


def render(sections: list[ChannelSection], query: StatsQuery, generated_at: datetime) -> str:
    return _page.render(
        sections=sections,
        channel=query.channel,
        since=_shown(query.since),
        # The bound is the first moment after `to`: show the last minute it includes.
        until=_shown(query.until - timedelta(milliseconds=1)) if query.until else None,
        generated_at=generated_at.astimezone(SAO_PAULO).strftime("%d/%m/%Y %H:%M"),
        latest_count=LATEST_SIGNALS,
        chart_months=CHART_MONTHS,
    )
