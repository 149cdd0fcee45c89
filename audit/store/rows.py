"""Small conversions between the store's rows and what its callers see."""

from __future__ import annotations

import datetime as _dt
import json

from audit.results import ResultRow
from audit.store.integrity import canonical_json, natural_key


def utc_now() -> str:
    """UTC to the microsecond: `run` decides a stage is current by comparing these, and two stages often
    finish within one second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def parse_json_cols(row: dict, *cols: str) -> dict:
    """Replace each ``NAME_json`` column by ``NAME``, parsed (an empty dict where it is empty)."""
    for col in cols:
        key = col.removesuffix("_json")
        row[key] = json.loads(row.pop(col) or "{}")
    return row


def with_reference(row: dict) -> dict:
    """A probe row with its ``reference_json`` parsed into ``reference`` (None where the probe has none)."""
    ref = row.pop("reference_json", None)
    row["reference"] = json.loads(ref) if ref else None
    return row


def result_columns(audit_id: str, row: ResultRow, created_at: str) -> dict:
    """A typed result row as the ``results`` table's columns, keyed by its natural key."""
    return {"id": natural_key(audit_id, *row.key()), "audit_id": audit_id, **row.columns(),
            "t_json": canonical_json(row.t), "details_json": canonical_json(row.details), "created_at": created_at}
