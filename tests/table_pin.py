"""Every number an audit's analysis derives, read back in one stable shape, to pin it across refactors.

A refactor of the statistics, the results row or the store must leave the
numbers of the demo's table where they were: `pinned_table` reads the
results, the confidence-sequence points and the budget points of a database
into plain rows, rounded to 9 decimals (far below what the report prints,
far above float-summation noise), and `check_pin` compares them with a file
in tests/data. Set ``UPDATE_PINS=1`` to rewrite the file after a change that
is meant to move a number, and say which and why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path

from audit.results import ResultRow
from audit.store import Store
from audit.vocabulary import HEADLINE, PROVENANCE, provenance_key

DATA = Path(__file__).parent / "data"
DECIMALS = 9
RESULT_KEYS = ("adversary", "comparison", "category", "split", "metric", "n", "q", "advantage", "ci_low", "ci_high",
               "confidence", "ci_method", "p_value", "p_holm", "p_bh", "selected")
SEQUENCE_KEYS = ("comparison", "adversary", "round", "n", "q", "estimate", "ci_low", "ci_high", "p_value")
IDENTITY = {"results": ("adversary", "comparison", "category", "split", "metric"),
            "sequence_points": ("comparison", "adversary", "round"),
            "budget_points": ("comparison", "adversary", "strategy", "probes")}
BUDGET_KEYS = ("comparison", "adversary", "strategy", "probes", "advantage", "ci_low", "ci_high")


def _number(value, decimals: int):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, decimals)
    return value


def _rows(rows: list[dict], keys: tuple[str, ...], decimals: int) -> list[dict]:
    shaped = [{key: _number(row.get(key), decimals) for key in keys if key in row} for row in rows]
    return sorted(shaped, key=lambda row: json.dumps(row, sort_keys=True))


def _legacy(row: ResultRow) -> dict:
    """A typed row in the shape the pins were first written in (before schema m006), so they stay comparable:
    the headline as the adversary ``headline`` with its ``selected`` adversary, provenance as
    ``provenance:NAME``, the estimate as ``advantage``."""
    values = asdict(row)
    return {**values, "advantage": row.estimate, "adversary": HEADLINE if row.headline else row.adversary,
            "selected": row.adversary if row.headline else None,
            "comparison": provenance_key(row.control) if row.comparison == PROVENANCE else row.comparison}


def pinned_table(db: Path, decimals: int = DECIMALS) -> dict:
    with Store.open_readonly(db) as store:
        results = [_legacy(row) for row in store.results()]
        return {"results": _rows(results, RESULT_KEYS, decimals),
                "sequence_points": _rows(store.sequence_points(), SEQUENCE_KEYS, decimals),
                "budget_points": _rows(store.budget_points(), BUDGET_KEYS, decimals)}


def check_pin(db: Path, name: str, decimals: int = DECIMALS) -> None:
    """Assert the database's derived numbers equal the pinned file ``tests/data/NAME.json`` (or rewrite it).

    ``decimals``: 9 for tiny models; 6 for the real models, whose log-probabilities may move in the
    seventh digit with the CPU's thread count (the report prints three).
    """
    path = DATA / f"{name}.json"
    table = pinned_table(db, decimals)
    if os.environ.get("UPDATE_PINS") == "1":
        path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(path.read_text())
    for part, keys in IDENTITY.items():
        got = {tuple(row.get(k) for k in keys): row for row in table[part]}
        want = {tuple(row.get(k) for k in keys): row for row in pinned[part]}
        assert got.keys() == want.keys(), f"{part}: rows {sorted(got.keys() ^ want.keys(), key=str)} differ"
        moved = [f"\n got  {got[k]}\n want {want[k]}" for k in sorted(want, key=str) if got[k] != want[k]]
        assert not moved, f"{part} moved:" + "".join(moved)
