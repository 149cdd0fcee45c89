"""The rows later stages add to an audit: analysis results and their points, compute costs, caches,
artifacts and distillation runs."""

from __future__ import annotations

import json
import struct
from typing import Any

from audit.store.connection import Connection, database_errors_named
from audit.store.integrity import canonical_json, natural_key
from audit.errors import StoreError
from audit.results import ResultRow
from audit.vocabulary import EXHIBIT_KINDS
from audit.store.rows import parse_json_cols, result_columns, utc_now


@database_errors_named
class DerivedRows(Connection):
    """What analysis, distillation and reporting record beside the transcripts; every write is idempotent."""

    # ---- results -------------------------------------------------------------

    def record_results(self, results: list[ResultRow]) -> None:
        """Upsert result rows keyed by their natural key (``audit.results.KEY``)."""
        with self._write():
            for r in results:
                self.db["results"].upsert(result_columns(self.audit_id, r, utc_now()), pk="id")

    def clear_results(self) -> None:
        """Drop derived rows before a fresh analysis, so stale results never mix with new ones."""
        with self._write():
            self.db.execute("delete from results where audit_id = ?", [self.audit_id])
            self.db.execute("delete from budget_points where audit_id = ?", [self.audit_id])
            self.db.execute("delete from sequence_points where audit_id = ?", [self.audit_id])
            self.db.execute("delete from exhibits where audit_id = ?", [self.audit_id])

    def results(self, **filters: Any) -> list[ResultRow]:
        """The audit's result rows whose fields equal ``filters``; a database from before m006 (read as it is,
        never migrated) is read through ``ResultRow.from_legacy``."""
        read = ResultRow.from_columns if "estimate" in self.db["results"].columns_dict else ResultRow.from_legacy
        rows = self.db["results"].rows_where("audit_id = ?", [self.audit_id],
                                             order_by="adversary, comparison, category, split")
        parsed = (parse_json_cols(r, "t_json", "details_json") for r in rows)
        typed = [read(r, r["t"], r["details"]) for r in parsed]
        return [r for r in typed if all(getattr(r, k) == v for k, v in filters.items())]

    def results_written(self) -> tuple[str | None, str | None]:
        """When the audit's first and last result rows were written: results older than a response are stale."""
        return tuple(self.db.execute("select min(created_at), max(created_at) from results where audit_id = ?",
                                     [self.audit_id]).fetchone())

    def record_budget_points(self, points: list[dict]) -> None:
        """Upsert budget points keyed by (comparison, adversary, strategy, probes per model)."""
        with self._write():
            for p in points:
                p = dict(p)
                pid = natural_key(self.audit_id, p["comparison"], p["adversary"], p["strategy"], p["probes"])
                self.db["budget_points"].upsert(
                    {"id": pid, "audit_id": self.audit_id,
                     "details_json": canonical_json(p.pop("details", None) or {}), **p},
                    pk="id",
                )

    def record_sequence_points(self, points: list[dict]) -> None:
        """Replace the audit's sequence points (they are derived from the responses in one pass)."""
        with self._write():
            self.db.execute("delete from sequence_points where audit_id = ?", [self.audit_id])
            for p in points:
                p = dict(p)
                pid = natural_key(self.audit_id, p["comparison"], p["adversary"], p["round"])
                self.db["sequence_points"].insert(
                    {"id": pid, "audit_id": self.audit_id, "details_json": canonical_json(p.pop("details", None) or {}),
                     **p}, pk="id")

    def sequence_points(self) -> list[dict]:
        if not self.db["sequence_points"].exists():  # a database read as it is, from before m005
            return []
        rows = self.db["sequence_points"].rows_where("audit_id = ?", [self.audit_id],
                                                     order_by="comparison, adversary, round")
        return [parse_json_cols(r, "details_json") for r in rows]

    def budget_points(self) -> list[dict]:
        """The audit's budget points, each sized by its ``probes`` per model; a database from before m008 (read
        as it is, never migrated) names that column ``q``, and is read in the same shape."""
        size = "probes" if "probes" in self.db["budget_points"].columns_dict else "q"
        rows = self.db["budget_points"].rows_where("audit_id = ?", [self.audit_id],
                                                   order_by=f"comparison, adversary, strategy, {size}")
        return [_with_probes(parse_json_cols(r, "details_json"), size) for r in rows]

    # ---- exhibits -----------------------------------------------------------------

    def record_exhibits(self, exhibits: list[dict]) -> None:
        """Replace the audit's exhibits with ``exhibits`` (each: probe_id, kind, p_teacher, note), ranked in the
        order given: the analysis chooses them in one pass, so a rerun rewrites them whole."""
        with self._write():
            self.db.execute("delete from exhibits where audit_id = ?", [self.audit_id])
            self.db["exhibits"].insert_all(
                ({"audit_id": self.audit_id, "rank": rank, "probe_id": e["probe_id"], "kind": e["kind"],
                  "p_teacher": e["p_teacher"], "note": e["note"]} for rank, e in enumerate(exhibits, start=1)),
                pk=("audit_id", "rank"))

    def exhibits(self) -> list[dict]:
        """The exhibits the analysis chose, in rank order; none in a database from before m009 (read as it is,
        never migrated) or from an analysis that predates the choice."""
        if not self.db["exhibits"].exists():
            return []
        rows = list(self.db["exhibits"].rows_where("audit_id = ?", [self.audit_id], order_by="rank"))
        for row in rows:
            _check_exhibit(self.path, row)
        return rows

    # ---- costs ---------------------------------------------------------------

    def model_costs(self) -> list[dict]:
        """Per model: queries q and compute t (tokens, wall and device seconds, FLOP estimate) of the evaluation.

        Derived from the recorded queries, so it can never drift from them.
        Only evaluation queries count: a teacher's responses to training probes
        (``distill`` and ``leakage`` record them in the same database) are the
        cost of a distillation, not of telling models apart. The FLOP estimate
        is 2 x parameters x tokens processed, where the parameter count is known.
        """
        rows = self.db.query(
            "select m.id as model_id, m.name, m.role, m.spec, m.param_count, "
            "count(q.id) as queries, sum(q.status = 'ok') as answered, sum(q.status = 'error') as errors, "
            "coalesce(sum(r.tokens_in), 0) as tokens_in, coalesce(sum(r.tokens_out), 0) as tokens_out, "
            "coalesce(sum(r.latency_s), 0) as wall_s, coalesce(sum(r.device_s), 0) as device_s "
            "from models m left join queries q on q.model_id = m.id and q.purpose = 'eval' "
            "left join responses r on r.query_id = q.id where m.audit_id = ? group by m.id order by m.rowid",
            [self.audit_id],
        )
        return [{**row, "flops": 2.0 * row["param_count"] * (row["tokens_in"] + row["tokens_out"])
                 if row["param_count"] else None} for row in rows]

    def record_cost(self, *, subject: str, stage: str, queries: int = 0, tokens_in: int = 0,
                    tokens_out: int = 0, wall_s: float = 0.0, device_s: float = 0.0,
                    flops: float | None = None, details: dict | None = None) -> None:
        """Record the compute of a stage that is not a collection query (judge, embedder, training, analysis)."""
        with self._write():
            self.db["costs"].upsert(
                {
                    "id": natural_key(self.audit_id, subject, stage),
                    "audit_id": self.audit_id,
                    "subject": subject,
                    "stage": stage,
                    "queries": queries,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                    "wall_s": wall_s,
                    "device_s": device_s,
                    "flops": flops,
                    "details_json": canonical_json(details or {}),
                },
                pk="id",
            )

    def costs(self) -> list[dict]:
        rows = self.db["costs"].rows_where("audit_id = ?", [self.audit_id], order_by="stage, subject")
        return [parse_json_cols(r, "details_json") for r in rows]

    def cost(self, subject: str, stage: str) -> dict | None:
        """The recorded compute of one subject in one stage, or None before any was recorded."""
        rows = self.db["costs"].rows_where("id = ?", [natural_key(self.audit_id, subject, stage)])
        row = next(iter(rows), None)
        return parse_json_cols(row, "details_json") if row else None

    def add_cost(self, *, subject: str, stage: str, queries: int, tokens_in: int, wall_s: float,
                 flops_per_token: float | None, details: dict) -> None:
        """Add a run's compute to the subject's cost row for the stage, in one transaction.

        For work whose results are cached across runs (embeddings, teacher
        scores): each run pays only for what it computed, so the row is the
        sum over runs. The FLOP estimate is ``flops_per_token`` times all the
        tokens processed (None where the model's size is unknown).
        """
        with self._write():
            prior = self.cost(subject, stage) or {"queries": 0, "tokens_in": 0, "wall_s": 0.0}
            tokens_in += prior["tokens_in"]
            self.record_cost(subject=subject, stage=stage, queries=queries + prior["queries"],
                             tokens_in=tokens_in, wall_s=wall_s + prior["wall_s"],
                             flops=None if flops_per_token is None else flops_per_token * tokens_in, details=details)

    # ---- the analysis' cache (embeddings, the teacher's log-likelihoods) ---------

    def cached(self, source: str, keys: list[str]) -> dict[str, list[float]]:
        """The values ``source`` made for ``keys`` (text hashes), where it made any, as float32 vectors."""
        out: dict[str, list[float]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = self.db.execute(
                "select key, dim, vector from cache where source = ? and key in (select value from json_each(?))",
                [source, json.dumps(chunk)],
            ).fetchall()
            for key, dim, blob in rows:
                out[key] = list(struct.unpack(f"<{dim}f", blob))
        return out

    def cache(self, source: str, values: dict[str, list[float]]) -> None:
        """Keep the values ``source`` made, by key (an upsert: making a value again changes nothing)."""
        with self._write():
            self.db["cache"].upsert_all(
                ({"key": key, "source": source, "dim": len(v), "vector": struct.pack(f"<{len(v)}f", *v)}
                 for key, v in values.items()),
                pk=("key", "source"),
            )

    # ---- artifacts -------------------------------------------------------------

    def record_artifact(self, path: str, kind: str, sha256: str, size: int) -> None:
        with self._write():
            self.db["artifacts"].upsert(
                {"id": natural_key(self.audit_id, path), "audit_id": self.audit_id, "path": path, "kind": kind,
                 "sha256": sha256, "bytes": size, "created_at": utc_now()},
                pk="id",
            )

    def artifacts(self) -> list[dict]:
        return list(self.db["artifacts"].rows_where("audit_id = ?", [self.audit_id], order_by="path"))

    # ---- distillation runs ---------------------------------------------------

    def start_distill_run(self, *, teacher_id: str, student_spec: str, adapter_dir: str,
                          config: dict) -> str:
        run_id = natural_key(self.audit_id, teacher_id, student_spec, adapter_dir, canonical_json(config))
        with self._write():
            self.db["distill_runs"].insert(
                {"id": run_id, "audit_id": self.audit_id, "teacher_id": teacher_id, "student_spec": student_spec,
                 "adapter_dir": adapter_dir, "config_json": canonical_json(config), "status": "training",
                 "created_at": utc_now(), "finished_at": None},
                pk="id",
                ignore=True,
            )
        return run_id

    def finish_distill_run(self, run_id: str, status: str = "complete") -> None:
        with self._write():
            self.db["distill_runs"].update(run_id, {"status": status, "finished_at": utc_now()})

    def log_distill_steps(self, run_id: str, steps: list[dict]) -> None:
        with self._write():
            self.db["distill_log"].upsert_all(({"run_id": run_id, **s} for s in steps), pk=("run_id", "step"))

    def distill_log(self, run_id: str) -> list[dict]:
        return list(self.db["distill_log"].rows_where("run_id = ?", [run_id], order_by="step"))

    def distill_runs(self) -> list[dict]:
        return list(self.db["distill_runs"].rows_where("audit_id = ?", [self.audit_id], order_by="created_at"))


def _with_probes(point: dict, size: str) -> dict:
    """A budget point with its size under ``probes``, whichever column (``q`` before m008) held it."""
    return {("probes" if k == size else k): v for k, v in point.items()}


def _check_exhibit(path, row: dict) -> None:
    """An exhibits row read from a database is hostile: a kind the report does not know, a probability that is
    not a number in [0, 1] or a note that is not text is one line, never a traceback in the renderer."""
    p = row["p_teacher"]
    sound = (row["kind"] in EXHIBIT_KINDS and isinstance(row["probe_id"], str)
             and (p is None or (isinstance(p, (int, float)) and 0.0 <= p <= 1.0))
             and (row["note"] is None or isinstance(row["note"], str)))
    if not sound:
        raise StoreError(f"{path}: a malformed exhibits row (rank {row['rank']!r}): kind, probe, p(teacher) or note "
                         "is not what distill-audit writes")
