"""CSV of GET /signals?format=csv: the old dashboard's export format."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from .schemas import SignalRow


_SAO_PAULO = ZoneInfo("America/Sao_Paulo")
CSV_HEADER = ["DATA", "ATIVO", "COMPRA_MIN", "COMPRA_MAX", "ALVO_1", "ALVO_2", "ALVO_FINAL", "STOP"]


def _pt_br(value: float | None) -> str:
    if value is None:
        return ""
    # 1250.5 → "1.250,50"
    return f"{value:,.2f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def signals_csv(rows: list[SignalRow]) -> str:
    """`;`-separated, dates `dd/mm/yyyy, HH:MM:SS` in America/Sao_Paulo, numbers pt-BR with 2 decimals."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        moment = datetime.fromtimestamp(row.ts / 1000, timezone.utc).astimezone(_SAO_PAULO)
        writer.writerow([
            moment.strftime("%d/%m/%Y, %H:%M:%S"), row.asset, _pt_br(row.buy_min), _pt_br(row.buy_max),
            _pt_br(row.target_1), _pt_br(row.target_2), _pt_br(row.target_final), _pt_br(row.stop),
        ])
    return out.getvalue()
