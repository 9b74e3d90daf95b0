"""The scripted message source: a seeded stream of Telegram events and the state it must produce.

`build_script(seed, messages)` returns the events in the order the gateway will read them and,
for every message, what the database must hold once everything is delivered. The stream mixes
what a real channel and a recovering gateway produce:

- new messages on a few channels, ids increasing per channel;
- edits (1 to 3 revisions), some delivered in the wrong order, a few before the message itself;
- deletions, some with the original date and some without, a few before the message itself;
- duplicates: the very same payload delivered again a little later;
- backfill: runs of consecutive messages held back and delivered late, after higher ids.

Everything is drawn from one `random.Random(seed)`, so a seed (plus the base date) replays the
same stream byte for byte.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from contracts import DeletedMessage, EditedMessage, MessagePayload, NewMessage, encode_payload

# Real-looking Telegram channel ids (64-bit, negative for channels).
CHANNELS = (-1001649127710, -1001234567890, -1009876543210)

_TICKERS = ("PETR4", "VALE3", "BOVAW22", "CYREW296", "ITUB4", "BBDC4", "MGLU3", "WEGE3", "PETZ3")
_CHATTER = (
    "Bom dia pessoal! Mercado abrindo em alta.",
    "Parcial realizada, ajustem o stop.",
    "Reunião às 18h — link no grupo.",
    "🚀🚀 Alvo batido! Parabéns a todos 🎉",
    "مرحبا بالجميع — RTL text mixed with LTR 123",
    "עדכון: שוק פתוח",
    "Quotes ' \" and backslash \\ and percent % and underscore _",
    "'; DROP TABLE tp_capital.forwarded_messages; --",
    "Linha 1\nLinha 2\n\tcom tab",
    "Zero-width joiner: 👩‍💻 and combining: é",
    "",
)


def _signal_text(rng: random.Random) -> str:
    ticker = rng.choice(_TICKERS)
    low = round(rng.uniform(0.2, 60.0), 2)
    high = round(low * rng.uniform(1.0, 1.05), 2)
    return (
        f"ATIVO: {ticker}\nCOMPRA: {low:.2f} A {high:.2f}\n"
        f"ALVO 1: {high * 1.1:.2f}\nALVO FINAL: {high * 1.3:.2f}\nSTOP: {low * 0.9:.2f}"
    )


def _followup_text(rng: random.Random) -> str:
    return f"{rng.choice(_TICKERS)} ALVO {rng.randint(1, 2)} ATINGIDO ✅\n+{rng.uniform(1, 40):.2f}%".replace(".", ",")


def random_text(rng: random.Random, serial: int) -> str:
    """A message body; the serial makes every text unique, so a wrong revision is always visible."""
    roll = rng.random()
    if roll < 0.35:
        body = _signal_text(rng)
    elif roll < 0.5:
        body = _followup_text(rng)
    else:
        body = rng.choice(_CHATTER)
    return f"{body}\n#{serial}" if body else f"#{serial}"


@dataclass
class ExpectedMessage:
    """What the database must hold for one message after every event is delivered."""

    channel_id: int
    message_id: int
    timestamp: datetime
    text: str
    edit_date: datetime | None = None
    deleted: bool = False
    # Every revision the message went through: its date (original or edit date) -> text.
    revisions: dict[datetime, str] = field(default_factory=dict)


@dataclass
class ScriptStats:
    messages: int = 0
    events: int = 0
    edits: int = 0
    edits_out_of_order: int = 0
    edits_before_create: int = 0
    deletions: int = 0
    deletions_before_create: int = 0
    deletions_without_date: int = 0
    duplicates: int = 0
    backfilled: int = 0


@dataclass
class Script:
    seed: int
    base_time: datetime
    events: list[MessagePayload]
    expected: dict[tuple[int, int], ExpectedMessage]
    stats: ScriptStats = field(default_factory=ScriptStats)

    def lines(self) -> list[bytes]:
        """The events as the source file holds them: one `encode_payload` JSON document a line."""
        return [encode_payload(event) + b"\n" for event in self.events]

    def write(self, path: Path) -> None:
        path.write_bytes(b"".join(self.lines()))


def default_base_time(now: datetime | None = None) -> datetime:
    """Midnight UTC two days ago: recent enough for any "not too old" rule, and printable for replay."""
    now = now or datetime.now(timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)


def build_script(
    seed: int,
    messages: int,
    *,
    base_time: datetime | None = None,
    edit_rate: float = 0.15,
    delete_rate: float = 0.05,
    duplicate_rate: float = 0.05,
    backfill_rate: float = 0.03,
    early_rate: float = 0.08,
) -> Script:
    """Build the event stream for `messages` distinct messages.

    Each event gets a position in the stream (the message's own position, plus an offset for
    edits, deletions, duplicates and backfill); the events are then sorted by position. Rates are
    per message (edits, deletions, backfill) or per event (duplicates); `early_rate` is the share
    of edits/deletions moved before the message they belong to.
    """
    rng = random.Random(seed)
    base_time = base_time or default_base_time()
    stats = ScriptStats(messages=messages)
    next_id = {channel: rng.randint(1_000, 100_000) for channel in CHANNELS}
    expected: dict[tuple[int, int], ExpectedMessage] = {}
    # (position, tie-breaker, payload): the tie-breaker keeps the sort stable and deterministic.
    placed: list[tuple[float, int, MessagePayload]] = []
    serial = 0

    def place(position: float, payload: MessagePayload) -> None:
        placed.append((position, len(placed), payload))

    # Backfill: runs of consecutive messages (any channel) delivered a few hundred events late.
    delayed: dict[int, float] = {}
    index = 0
    while index < messages:
        if rng.random() < backfill_rate / 10:
            run = rng.randint(5, 20)
            delay = rng.uniform(100, 400)
            for offset in range(run):
                delayed[index + offset] = delay
            index += run
        else:
            index += 1

    for index in range(messages):
        channel = rng.choice(CHANNELS)
        message_id = next_id[channel]
        next_id[channel] += 1 if rng.random() < 0.9 else rng.randint(2, 5)  # ids skip (deleted upstream)
        timestamp = base_time + timedelta(seconds=index * 1.5, microseconds=rng.randint(0, 999_999))
        serial += 1
        text = random_text(rng, serial)
        new = NewMessage(channel_id=str(channel) if rng.random() < 0.5 else channel, message_id=message_id,
                         timestamp=timestamp, text=text, channel_name="TP Capital")
        position = float(index) + delayed.get(index, 0.0)
        if index in delayed:
            stats.backfilled += 1
        place(position, new)
        model = ExpectedMessage(channel, message_id, timestamp, text, revisions={timestamp: text})
        expected[(channel, message_id)] = model
        last = position

        if rng.random() < edit_rate:
            count = rng.choice((1, 1, 2, 3))
            edit_date = timestamp
            edits: list[tuple[float, EditedMessage]] = []
            for _ in range(count):
                edit_date = edit_date + timedelta(seconds=rng.randint(1, 600), microseconds=rng.randint(0, 999_999))
                serial += 1
                edit_text = random_text(rng, serial)
                last = last + rng.uniform(1, 50)
                edits.append((last, EditedMessage(channel_id=channel, message_id=message_id, timestamp=timestamp,
                                                  text=edit_text, edit_date=edit_date, channel_name="TP Capital")))
                model.text, model.edit_date = edit_text, edit_date
                model.revisions[edit_date] = edit_text
            if count > 1 and rng.random() < 0.4:
                # Deliver the revisions newest first: the older ones must not overwrite the text.
                positions = sorted(pos for pos, _ in edits)
                edits = [(pos, edit) for pos, (_, edit) in zip(positions, reversed(edits))]
                stats.edits_out_of_order += 1
            if rng.random() < early_rate:
                first_pos, first_edit = edits[0]
                edits[0] = (position - rng.uniform(1, 30), first_edit)
                stats.edits_before_create += 1
            for pos, edit in edits:
                place(pos, edit)
            stats.edits += count

        if rng.random() < delete_rate:
            with_date = rng.random() < 0.7
            deleted_at = (model.edit_date or timestamp) + timedelta(seconds=rng.randint(1, 3600))
            deletion = DeletedMessage(channel_id=channel, message_id=message_id,
                                      timestamp=timestamp if with_date else None, deleted_at=deleted_at)
            if rng.random() < early_rate:
                del_pos = position - rng.uniform(1, 30)
                stats.deletions_before_create += 1
            else:
                del_pos = last + rng.uniform(1, 50)
            place(del_pos, deletion)
            model.deleted = True
            stats.deletions += 1
            stats.deletions_without_date += not with_date

    # Duplicates: the same payload again, a little later (a retry, or a redelivery after restart).
    for position, _, payload in list(placed):
        if rng.random() < duplicate_rate:
            place(position + rng.uniform(0.5, 200), payload)
            stats.duplicates += 1

    placed.sort(key=lambda item: (item[0], item[1]))
    events = [payload for _, _, payload in placed]
    stats.events = len(events)
    return Script(seed=seed, base_time=base_time, events=events, expected=expected, stats=stats)


def replay_final_state(events: list[MessagePayload]) -> dict[tuple[int, int], ExpectedMessage]:
    """The converged state of any delivery order, computed from the events alone.

    Used to cross-check `build_script`'s model: the latest edit (by edit date) wins, a deletion
    is final whatever order it came in, and a message exists once it has been created or edited.
    """
    state: dict[tuple[int, int], ExpectedMessage] = {}
    deleted: set[tuple[int, int]] = set()
    for event in events:
        key = (int(event.channel_id), event.message_id)
        if isinstance(event, DeletedMessage):
            deleted.add(key)
            continue
        revision_date = event.edit_date if isinstance(event, EditedMessage) else event.timestamp
        current = state.get(key)
        if current is None:
            current = state[key] = ExpectedMessage(key[0], key[1], event.timestamp, event.text)
            current.revisions[revision_date] = event.text
            if isinstance(event, EditedMessage):
                current.edit_date = event.edit_date
            continue
        current.revisions[revision_date] = event.text
        if isinstance(event, EditedMessage) and (current.edit_date is None or event.edit_date > current.edit_date):
            current.text, current.edit_date = event.text, event.edit_date
    for key in deleted:
        if key in state:
            state[key].deleted = True
    return state


def kinds(events: list[MessagePayload]) -> Counter[str]:
    return Counter(type(event).__name__ for event in events)
