"""The store: an open audit database and the transcripts it records (queries, responses, judgements).

One database file holds one audit: its config, the models, the probes it
asked, every query and response, the judgements, the results and the costs.
Every stage reads what the stage before wrote here, so the report is a
rendering of this file and any stage can be re-run alone.

Writes are transactional and idempotent by natural key: a query is keyed by
(audit, model, probe, sample, purpose), a judgement by (judge, comparison,
probe, sample, order), a result by (adversary, comparison, category, split,
metric). Re-running any stage after a crash (even ``kill -9``) never loses
a committed row and never duplicates one.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from audit import __version__
from audit.errors import StoreError
from audit.store.connection import database_errors_named
from audit.store.derived import DerivedRows
from audit.store.integrity import (canonical_json, content_hash, judgement_record, merkle_root, natural_key,
                                   transcript_record)
from audit.store.rows import utc_now, with_reference


@database_errors_named
class Store(DerivedRows):
    """An open audit database. Use ``Store.open(path)`` (or ``Store.open_readonly(path)``)."""

    _audit_id: str | None = None  # ``audit_id``, once read or created

    # ---- audits --------------------------------------------------------------

    def audit(self) -> dict | None:
        """The audit this database holds, or None if collection never started."""
        rows = list(self.db["audits"].rows_where(order_by="created_at", limit=1))
        return rows[0] if rows else None

    @property
    def audit_id(self) -> str:
        """The id of the one audit this database holds, read once; every method of the store reads and writes
        that audit's rows, so no caller passes it. A ``StoreError`` before collection created it."""
        if self._audit_id is None:
            self._audit_id = self.require_audit()["id"]
        return self._audit_id

    def require_audit(self) -> dict:
        audit = self.audit()
        if audit is None:
            raise StoreError(f"{self.path}: holds no audit yet (run `distill-audit collect` first)")
        return audit

    def ensure_audit(self, config: dict, *, suite_name: str, suite_version: str, suite_hash: str,
                     seed: int, private_seed_hash: str | None = None) -> str:
        """Create the audit on first use; on later runs check it is the same audit and return its id."""
        existing = self.audit()
        if existing is not None:
            old = json.loads(existing["config_json"])
            for key in ("teacher", "suspect"):
                if key in config and key in old and old[key] != config[key]:
                    raise StoreError(
                        f"{self.path}: holds an audit with {key} {old[key]!r}, not {config[key]!r}; "
                        "use a new --db for a different audit"
                    )
            self._audit_id = existing["id"]
            return self._audit_id
        audit_id = uuid.uuid4().hex[:16]
        with self._write():
            self.db["audits"].insert(
                {
                    "id": audit_id,
                    "created_at": utc_now(),
                    "tool_version": __version__,
                    "status": "collecting",
                    "config_json": canonical_json(config),
                    "suite_name": suite_name,
                    "suite_version": suite_version,
                    "suite_hash": suite_hash,
                    "private_seed_hash": private_seed_hash,
                    "seed": seed,
                }
            )
        self._audit_id = audit_id
        return audit_id

    def update_audit(self, **fields: Any) -> None:
        if "config" in fields:
            fields["config_json"] = canonical_json(fields.pop("config"))
        with self._write():
            self.db["audits"].update(self.audit_id, fields)

    # ---- models --------------------------------------------------------------

    def add_model(self, *, name: str, role: str, spec: str, description: dict) -> str:
        """Record a model by its name in this audit (teacher, suspect, control:NAME, judge, ...)."""
        model_id = f"{self.audit_id}:{name}"
        row = {
            "id": model_id,
            "audit_id": self.audit_id,
            "name": name,
            "role": role,
            "spec": spec,
            "backend": description.get("backend"),
            "fingerprint": description.get("fingerprint"),
            "param_count": description.get("param_count"),
            "describe_json": canonical_json(description),
        }
        with self._write():
            existing = self.db["models"].rows_where("id = ?", [model_id])
            old = next(iter(existing), None)
            if old and old["spec"] != spec:
                raise StoreError(
                    f"{self.path}: model {name!r} is already {old['spec']!r} in this audit, not {spec!r}"
                )
            self.db["models"].upsert(row, pk="id")
        return model_id

    def models(self, role: str | None = None) -> list[dict]:
        return self._audit_rows("models", "rowid", role=role)

    def _audit_rows(self, table: str, order_by: str, **equal: str | None) -> list[dict]:
        """The audit's rows of ``table`` whose named columns equal the given values (a None value: any)."""
        where, args = ["audit_id = ?"], [self.audit_id]
        for column, value in equal.items():
            if value:
                where.append(f"[{column}] = ?")
                args.append(value)
        return list(self.db[table].rows_where(" and ".join(where), args, order_by=order_by))

    def model(self, name: str) -> dict | None:
        return next(iter(self.db["models"].rows_where("id = ?", [f"{self.audit_id}:{name}"])), None)

    # ---- suites and probes ---------------------------------------------------

    def add_suite(self, suite) -> None:
        """Record a suite (an ``audit.probes.Suite``) and its probes; idempotent."""
        with self._write():
            self.db["suites"].upsert(
                {
                    "hash": suite.hash,
                    "name": suite.name,
                    "version": suite.version,
                    "n_probes": len(suite.probes),
                    "source": suite.source,
                    "private_seed_hash": suite.private_seed_hash,
                },
                pk="hash",
            )
            self.db["probes"].insert_all(
                (
                    {
                        "id": p.id,
                        "suite_hash": suite.hash,
                        "category": p.category,
                        "subcategory": p.subcategory,
                        "text": p.text,
                        "reference_json": canonical_json(p.reference) if p.reference is not None else None,
                        "split": p.split,
                        "pair_of": p.pair_of,
                    }
                    for p in suite.probes
                ),
                pk="id",
                ignore=True,
                batch_size=500,
            )

    def suites(self) -> list[dict]:
        """Every suite recorded in this database, by name."""
        return list(self.db["suites"].rows_where(order_by="name"))

    def select_probes(self, probe_ids: list[str], purpose: str = "eval", first_rank: int = 0) -> None:
        """Record which probes this audit asks, for what (``eval`` or ``train``; ``sequential-order``: a
        sequential audit's pre-registered order of every probe it may ask), ranked from ``first_rank``.

        A probe selected for training can never be selected for evaluation and
        vice versa: evaluating a student on its own training prompts would
        measure memory, not imitation.
        """
        other = {"eval": "train", "train": "eval"}.get(purpose)
        clash = other and self.db.execute(
            "select probe_id from selections where audit_id = ? and purpose = ? and probe_id in "
            "(select value from json_each(?)) limit 1",
            [self.audit_id, other, json.dumps(probe_ids)],
        ).fetchone()
        if clash:
            raise StoreError(
                f"{self.path}: probe {clash[0]} is already selected for {other}; "
                f"an audit never evaluates on training probes"
            )
        with self._write():
            self.db["selections"].insert_all(
                (
                    {"audit_id": self.audit_id, "probe_id": pid, "purpose": purpose, "rank": i}
                    for i, pid in enumerate(probe_ids, start=first_rank)
                ),
                pk=("audit_id", "probe_id", "purpose"),
                ignore=True,
            )

    def selected_probes(self, purpose: str = "eval") -> list[dict]:
        """The probes selected for ``purpose``, in selection order, with parsed references."""
        rows = self.db.query(
            "select p.*, s.rank from selections s join probes p on p.id = s.probe_id "
            "where s.audit_id = ? and s.purpose = ? order by s.rank",
            [self.audit_id, purpose],
        )
        return [with_reference(row) for row in rows]

    def probe(self, probe_id: str) -> dict | None:
        row = next(iter(self.db["probes"].rows_where("id = ?", [probe_id])), None)
        return with_reference(row) if row else None

    def record_round(self, round_index: int, units: list[tuple[str, int]]) -> None:
        """Record that the (probe, sample) ``units`` joined a sequential audit's sequences at ``round_index``; a
        unit keeps the first round recorded for it, so re-evaluating a round never moves what an earlier one
        decided on."""
        with self._write():
            self.db["sequential_rounds"].insert_all(
                ({"audit_id": self.audit_id, "probe_id": pid, "sample": sample, "round": round_index}
                 for pid, sample in units),
                pk=("audit_id", "probe_id", "sample"), ignore=True)

    def sequential_rounds(self) -> dict[tuple[str, int], int]:
        """(probe id, sample) -> the round it joined the sequences at; none in a database from before m011 (read
        as it is, never migrated: its units join at the round of their probe's place in the order, as they were
        then evaluated)."""
        if not self.db["sequential_rounds"].exists():
            return {}
        rows = self.db.execute("select probe_id, sample, round from sequential_rounds where audit_id = ?",
                               [self.audit_id]).fetchall()
        bad = next((r for r in rows if type(r[1]) is not int or type(r[2]) is not int or r[2] < 0), None)
        if bad:  # a received database is hostile: a round that is not a count would misorder the sequences
            raise StoreError(f"{self.path}: sequential_rounds gives probe {str(bad[0])[:40]!r} sample {bad[1]!r} "
                             f"the round {bad[2]!r}, not a round number")
        return {(probe_id, sample): round_index for probe_id, sample, round_index in rows}

    # ---- queries and responses -----------------------------------------------

    def query_id(self, model_id: str, probe_id: str, sample: int, purpose: str = "eval") -> str:
        return natural_key(self.audit_id, model_id, probe_id, sample, purpose)

    def completed_queries(self, model_id: str, purpose: str = "eval") -> set[tuple[str, int]]:
        """(probe_id, sample) pairs already answered: collection skips them on resume."""
        rows = self.db.execute(
            "select probe_id, sample from queries where audit_id = ? and model_id = ? and purpose = ? "
            "and status = 'ok'",
            [self.audit_id, model_id, purpose],
        ).fetchall()
        return {(r[0], r[1]) for r in rows}

    def record_responses(self, model_id: str, responses: list[dict], purpose: str = "eval") -> None:
        """Record a batch of answered or failed queries in one transaction.

        Each response is a dict with ``probe_id``, ``sample``, ``params`` and
        either ``error`` (a failed query: recorded, retried on resume) or the
        response fields ``text``, ``tokens_in``, ``tokens_out``,
        ``finish_reason``, ``latency_s``, ``device_s`` and optionally
        ``logprobs``, ``request``, ``raw``, ``started_at``.
        """
        with self._write():
            for a in responses:
                qid = self.query_id(model_id, a["probe_id"], a["sample"], purpose)
                prior = self.db.execute("select attempts from queries where id = ?", [qid]).fetchone()
                failed = a.get("error") is not None
                self.db["queries"].upsert(
                    {
                        "id": qid,
                        "audit_id": self.audit_id,
                        "model_id": model_id,
                        "probe_id": a["probe_id"],
                        "sample": a["sample"],
                        "purpose": purpose,
                        "params_json": canonical_json(a.get("params", {})),
                        "status": "error" if failed else "ok",
                        "error": a.get("error"),
                        "attempts": (prior[0] if prior else 0) + 1,
                        "started_at": a.get("started_at"),
                        "finished_at": utc_now(),
                        "latency_s": a.get("latency_s"),
                    },
                    pk="id",
                )
                if failed:
                    continue
                transcript = transcript_record(model_id, a["probe_id"], a["sample"], purpose, a.get("params", {}),
                                         a["text"], a.get("top_logprobs"))
                self.db["responses"].upsert(
                    {
                        "query_id": qid,
                        "audit_id": self.audit_id,
                        "model_id": model_id,
                        "probe_id": a["probe_id"],
                        "sample": a["sample"],
                        "text": a["text"],
                        "tokens_in": a.get("tokens_in"),
                        "tokens_out": a.get("tokens_out"),
                        "finish_reason": a.get("finish_reason"),
                        "latency_s": a.get("latency_s"),
                        "device_s": a.get("device_s"),
                        "logprobs_json": canonical_json(a["logprobs"]) if a.get("logprobs") is not None else None,
                        "request_json": canonical_json(a["request"]) if a.get("request") is not None else None,
                        "raw_json": canonical_json(a["raw"]) if a.get("raw") is not None else None,
                        "top_logprobs": a.get("top_logprobs"),
                        "content_hash": content_hash(transcript),
                    },
                    pk="query_id",
                )

    def responses(self, model_id: str | None = None, purpose: str = "eval") -> list[dict]:
        """Answered queries joined with their probe: what the adversaries read.

        Each row has ``query_id``, ``model_id``, ``model_name``, ``probe_id``,
        ``category``, ``subcategory``, ``split``, ``probe_text``, ``sample``,
        ``text``, ``tokens_in``, ``tokens_out``, ``finish_reason``,
        ``latency_s``, ``logprobs`` (parsed or None).
        """
        sql = (
            "select r.query_id, r.model_id, m.name as model_name, r.probe_id, p.category, p.subcategory, "
            "p.split, p.text as probe_text, r.sample, r.text, r.tokens_in, r.tokens_out, r.finish_reason, "
            "r.latency_s, r.logprobs_json from responses r join queries q on q.id = r.query_id "
            "join probes p on p.id = r.probe_id join models m on m.id = r.model_id "
            "where r.audit_id = ? and q.purpose = ?"
        )
        args: list[Any] = [self.audit_id, purpose]
        if model_id:
            sql += " and r.model_id = ?"
            args.append(model_id)
        sql += " order by r.model_id, r.probe_id, r.sample"
        out = []
        for row in self.db.query(sql, args):
            lp = row.pop("logprobs_json")
            row["logprobs"] = json.loads(lp) if lp else None
            out.append(row)
        return out

    def top_distributions(self, model_id: str, purpose: str = "eval") -> dict[str, bytes]:
        """query id -> the packed top-k distributions (``audit.topk.TopK.unpack``) of each response that has them."""
        if not self._holds_top_logprobs():
            return {}
        rows = self.db.execute(
            "select r.query_id, r.top_logprobs from responses r join queries q on q.id = r.query_id "
            "where r.audit_id = ? and r.model_id = ? and q.purpose = ? and r.top_logprobs is not null",
            [self.audit_id, model_id, purpose]).fetchall()
        return {qid: blob for qid, blob in rows}

    def _holds_top_logprobs(self) -> bool:
        """Whether the schema has the top-k column: a database read as it is (``open_readonly``) may predate it."""
        return "top_logprobs" in self.db["responses"].columns_dict

    def reported_cost(self) -> tuple[float, int]:
        """(sum, responses) of the prices endpoints reported in their replies (``usage.cost``), for --max-cost."""
        row = self.db.execute(
            "select total(json_extract(raw_json, '$.usage.cost')), count(json_extract(raw_json, '$.usage.cost')) "
            "from responses where audit_id = ? and json_valid(raw_json)", [self.audit_id]).fetchone()
        return float(row[0]), int(row[1])

    def query_errors(self) -> list[dict]:
        return list(self.db["queries"].rows_where("audit_id = ? and status = 'error'", [self.audit_id]))

    def last_response_at(self) -> str | None:
        """When the last evaluation response was recorded: results older than this are stale."""
        row = self.db.execute("select max(finished_at) from queries where audit_id = ? and purpose = 'eval' "
                              "and status = 'ok'", [self.audit_id]).fetchone()
        return row[0] if row else None

    # ---- judgements ----------------------------------------------------------

    def judgement_id(self, judge_id: str, comparison: str, probe_id: str, sample: int, order: str) -> str:
        return natural_key(self.audit_id, judge_id, comparison, probe_id, sample, order)

    def judged_keys(self, judge_id: str, comparison: str) -> set[tuple[str, int, str]]:
        rows = self.db.execute(
            "select probe_id, sample, \"order\" from judgements where audit_id = ? and judge_id = ? and comparison = ?",
            [self.audit_id, judge_id, comparison],
        ).fetchall()
        return {(r[0], r[1], r[2]) for r in rows}

    def record_judgements(self, judgements: list[dict]) -> None:
        """Record judge verdicts; each dict has the judgements columns except id, self.audit_id and content_hash."""
        with self._write():
            for j in judgements:
                jid = self.judgement_id(j["judge_id"], j["comparison"], j["probe_id"], j["sample"], j["order"])
                row = {"id": jid, "audit_id": self.audit_id, **j}
                row["content_hash"] = content_hash(judgement_record(row))
                self.db["judgements"].upsert(row, pk="id")

    def judgements(self, comparison: str | None = None) -> list[dict]:
        return self._audit_rows("judgements", 'probe_id, sample, "order"', comparison=comparison)

    # ---- integrity -------------------------------------------------------------

    def transcript_hashes(self) -> list[str]:
        """Content hashes of every response and judgement, in a fixed order: the Merkle leaves."""
        rows = self.db.execute(
            "select content_hash from (select query_id as k, content_hash from responses where audit_id = ? "
            "union all select id as k, content_hash from judgements where audit_id = ?) order by k",
            [self.audit_id, self.audit_id],
        ).fetchall()
        return [r[0] for r in rows]

    def transcripts_root(self) -> tuple[int, str]:
        """(how many transcripts, their Merkle root): what a report states and a signature covers."""
        leaves = self.transcript_hashes()
        return len(leaves), merkle_root(leaves)

    def verify_transcripts(self) -> list[str]:
        """Query ids whose stored response no longer matches its content hash."""
        bad = []
        cur = self.db.execute(
            f"select r.query_id, r.model_id, r.probe_id, r.sample, q.purpose, q.params_json, r.text, "
            f"{'r.top_logprobs' if self._holds_top_logprobs() else 'null'}, "
            "r.content_hash from responses r join queries q on q.id = r.query_id where r.audit_id = ?",
            [self.audit_id],
        )
        for qid, mid, pid, sample, purpose, params, text, top, stored in cur.fetchall():
            expected = content_hash(transcript_record(mid, pid, sample, purpose, json.loads(params or "{}"), text, top))
            if expected != stored:
                bad.append(qid)
        return bad
