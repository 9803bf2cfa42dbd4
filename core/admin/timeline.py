"""One timeline per object: entries several apps contribute (the audit trail, simple-history's
changes), merged newest first, each with its actor, reason and what changed (before → after)."""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model

from core.display import credits_text

# simple-history's bookkeeping and timestamps every save moves: never "what changed".
NOT_CHANGES = {"id", "updated_at", "history_id", "history_date", "history_type", "history_user"}
ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")
SIX_PLACES = re.compile(r"^-?\d+\.\d{6}$")
HISTORY_VERBS = {"+": "created", "~": "changed", "-": "deleted"}


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    source: str  # "audit" or "history"
    what: str
    actor: str
    reason: str = ""
    changes: Sequence[Change] = field(default_factory=tuple)


def shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, Decimal) or (isinstance(value, str) and SIX_PLACES.match(value)):
        return credits_text(value)  # credits and quantities, as JSON snapshots write them
    if isinstance(value, str) and ISO_INSTANT.match(value):
        value = datetime.fromisoformat(value)  # an audit snapshot's instant, as JSON wrote it
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


def changes_between(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """Field by field, what differs between two snapshots (an audit entry's before and after)."""
    before, after = before or {}, after or {}
    names = [*before, *(name for name in after if name not in before)]
    return [
        Change(name, shown(before.get(name)), shown(after.get(name)))
        for name in names
        if before.get(name) != after.get(name)
    ]


def _tracked_fields(record: Model) -> list[Any]:
    return [
        f
        for f in record._meta.concrete_fields
        if f.attname not in NOT_CHANGES and not f.attname.startswith("history_") and f.name != "org"
    ]


def _readable(record: Any, field: Any) -> str:
    """A value as staff read it: a related row by its name, never its internal id."""
    if field.is_relation and getattr(record, field.attname) is not None:
        return shown(getattr(record, field.name))
    return shown(getattr(record, field.attname))


def history_entries(records: Iterable[Any], *, label: str) -> list[TimelineEntry]:
    """simple-history records (any order) as timeline entries: each change against the object's
    previous record among those given (a creation shows its values; the oldest change given, none)."""
    ordered = sorted(records, key=lambda r: (r.history_date, r.history_id))
    previous: dict[Any, Any] = {}
    entries = []
    for record in ordered:
        fields = _tracked_fields(record)
        earlier = previous.get(record.id)
        if record.history_type == "+":
            changes = [
                Change(f.name, "—", _readable(record, f))
                for f in fields
                if getattr(record, f.attname) not in (None, "")
            ]
        elif earlier is not None:
            changes = [
                Change(f.name, _readable(earlier, f), _readable(record, f))
                for f in fields
                if getattr(earlier, f.attname) != getattr(record, f.attname)
            ]
        else:
            changes = []
        previous[record.id] = record
        if record.history_type == "~" and earlier is not None and not changes:
            continue  # a save that changed nothing shown
        user = record.history_user
        entries.append(
            TimelineEntry(
                at=record.history_date,
                source="history",
                what=f"{label} {HISTORY_VERBS.get(record.history_type, 'changed')}",
                actor=f"staff: {user.get_username()}" if user else "a product or a job (no staff user)",
                reason=record.history_change_reason or "",
                changes=tuple(changes),
            )
        )
    return entries


def merged(streams: Iterable[Iterable[TimelineEntry]], *, limit: int) -> list[TimelineEntry]:
    """Every stream's entries in one list, newest first, at most `limit`."""
    everything = [entry for stream in streams for entry in stream]
    return sorted(everything, key=lambda e: e.at, reverse=True)[:limit]
