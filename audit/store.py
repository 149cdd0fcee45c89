"""The audit database: schema, migrations, and the only code that writes SQL.

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

import contextlib
import datetime as _dt
import functools
import hashlib
import inspect
import json
import os
import sqlite3
import struct
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from audit import __version__
from audit.errors import StoreError
from audit.results import ResultRow

migrations = Migrations("distill-audit")


# --------------------------------------------------------------------------
# Hashing helpers shared by the store, collection and signing
# --------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form every content hash is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    """sha256 of the UTF-8 bytes; a lone surrogate (which valid text never holds, and which collection replaces
    where text enters) is hashed as its own bytes ("surrogatepass"), so hashing any str never fails."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_hash(value: Any) -> str:
    """sha256 of canonical JSON: the hash each transcript row carries."""
    return sha256_text(canonical_json(value))


def merkle_root(leaves: Iterable[str]) -> str:
    """Merkle root (sha256, pairwise, last node promoted) over hex leaf hashes in the given order."""
    level = [bytes.fromhex(leaf) for leaf in leaves]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest())
            else:
                nxt.append(level[i])
        level = nxt
    return level[0].hex()


def _key(*parts: Any) -> str:
    """A short stable id for a natural key."""
    return content_hash([str(p) for p in parts])[:24]


def _now() -> str:
    """UTC to the microsecond: `run` decides a stage is current by comparing these, and two stages often
    finish within one second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------
# Schema: one decorated function per step; never edit a step once released,
# add a new one.
# --------------------------------------------------------------------------


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["audits"].create(
        {
            "id": str,
            "created_at": str,
            "tool_version": str,
            "status": str,
            "config_json": str,
            "suite_name": str,
            "suite_version": str,
            "suite_hash": str,
            "private_seed_hash": str,
            "seed": int,
        },
        pk="id",
    )
    db["models"].create(
        {
            "id": str,
            "audit_id": str,
            "name": str,
            "role": str,
            "spec": str,
            "backend": str,
            "fingerprint": str,
            "param_count": int,
            "describe_json": str,
        },
        pk="id",
        foreign_keys=[("audit_id", "audits", "id")],
    )
    db["suites"].create(
        {
            "hash": str,
            "name": str,
            "version": str,
            "n_probes": int,
            "source": str,
            "secret_seed_hash": str,
        },
        pk="hash",
    )
    db["probes"].create(
        {
            "id": str,
            "suite_hash": str,
            "category": str,
            "subcategory": str,
            "text": str,
            "reference_json": str,
            "split": str,
        },
        pk="id",
    )
    db["selections"].create(
        {"audit_id": str, "probe_id": str, "purpose": str, "rank": int},
        pk=("audit_id", "probe_id", "purpose"),
        foreign_keys=[("audit_id", "audits", "id"), ("probe_id", "probes", "id")],
    )
    db["queries"].create(
        {
            "id": str,
            "audit_id": str,
            "model_id": str,
            "probe_id": str,
            "sample": int,
            "purpose": str,
            "params_json": str,
            "status": str,
            "error": str,
            "attempts": int,
            "started_at": str,
            "finished_at": str,
            "latency_s": float,
        },
        pk="id",
        foreign_keys=[
            ("audit_id", "audits", "id"),
            ("model_id", "models", "id"),
            ("probe_id", "probes", "id"),
        ],
    )
    db["queries"].create_index(["audit_id", "model_id", "status"])
    db["responses"].create(
        {
            "query_id": str,
            "audit_id": str,
            "model_id": str,
            "probe_id": str,
            "sample": int,
            "text": str,
            "tokens_in": int,
            "tokens_out": int,
            "finish_reason": str,
            "latency_s": float,
            "device_s": float,
            "logprobs_json": str,
            "request_json": str,
            "raw_json": str,
            "content_hash": str,
        },
        pk="query_id",
        foreign_keys=[("query_id", "queries", "id")],
    )
    db["responses"].create_index(["audit_id", "model_id"])
    db["judgements"].create(
        {
            "id": str,
            "audit_id": str,
            "judge_id": str,
            "comparison": str,
            "probe_id": str,
            "sample": int,
            "order": str,
            "first_query_id": str,
            "second_query_id": str,
            "verdict": str,
            "correct": int,
            "p_first": float,
            "p_second": float,
            "method": str,
            "raw_output": str,
            "latency_s": float,
            "tokens_in": int,
            "tokens_out": int,
            "content_hash": str,
        },
        pk="id",
    )
    db["judgements"].create_index(["audit_id", "comparison"])
    db["results"].create(
        {
            "id": str,
            "audit_id": str,
            "adversary": str,
            "comparison": str,
            "category": str,
            "split": str,
            "metric": str,
            "n": int,
            "advantage": float,
            "ci_low": float,
            "ci_high": float,
            "confidence": float,
            "ci_method": str,
            "p_value": float,
            "p_holm": float,
            "p_bh": float,
            "q": int,
            "t_json": str,
            "details_json": str,
            "created_at": str,
        },
        pk="id",
    )
    db["budget_points"].create(
        {
            "id": str,
            "audit_id": str,
            "comparison": str,
            "adversary": str,
            "strategy": str,
            "q": int,
            "n": int,
            "advantage": float,
            "ci_low": float,
            "ci_high": float,
            "confidence": float,
            "details_json": str,
        },
        pk="id",
    )
    db["costs"].create(
        {
            "id": str,
            "audit_id": str,
            "subject": str,
            "stage": str,
            "queries": int,
            "tokens_in": int,
            "tokens_out": int,
            "wall_s": float,
            "device_s": float,
            "flops": float,
            "details_json": str,
        },
        pk="id",
    )
    db["artifacts"].create(
        {
            "id": str,
            "audit_id": str,
            "path": str,
            "kind": str,
            "sha256": str,
            "bytes": int,
            "created_at": str,
        },
        pk="id",
    )
    db["embeddings"].create(
        {"text_hash": str, "embedder": str, "dim": int, "vector": bytes},
        pk=("text_hash", "embedder"),
    )
    db["distill_runs"].create(
        {
            "id": str,
            "audit_id": str,
            "teacher_id": str,
            "student_spec": str,
            "adapter_dir": str,
            "config_json": str,
            "status": str,
            "created_at": str,
            "finished_at": str,
        },
        pk="id",
    )
    db["distill_log"].create(
        {
            "run_id": str,
            "step": int,
            "epoch": float,
            "loss": float,
            "learning_rate": float,
            "tokens": int,
            "tokens_per_s": float,
            "elapsed_s": float,
        },
        pk=("run_id", "step"),
    )


@migrations()
def m002_full_text_search(db: sqlite_utils.Database) -> None:
    """FTS5 over prompts and responses, kept in sync by triggers, so transcripts are searchable in Datasette."""
    db["probes"].enable_fts(["text", "category"], fts_version="FTS5", create_triggers=True)
    db["responses"].enable_fts(["text"], fts_version="FTS5", create_triggers=True)


@migrations()
def m003_probe_pairs(db: sqlite_utils.Database) -> None:
    """Perturbation pairs (typos, paraphrases) link to their original, so consistency can be analysed."""
    db["probes"].add_column("pair_of", str)


@migrations()
def m004_top_logprobs(db: sqlite_utils.Database) -> None:
    """Each response's top-k next-token distributions as one packed blob (``audit.topk``), for logit
    distillation and leakage estimates; its sha256 is part of the response's content hash."""
    db["responses"].add_column("top_logprobs", bytes)


@migrations()
def m005_sequence_points(db: sqlite_utils.Database) -> None:
    """A sequential audit's confidence sequences, one row per (comparison, adversary, round), for the report's
    plot; derived from the responses like ``results``, and rewritten with them."""
    db["sequence_points"].create(
        {
            "id": str,
            "audit_id": str,
            "comparison": str,
            "adversary": str,
            "round": int,
            "n": int,
            "q": int,
            "estimate": float,
            "ci_low": float,
            "ci_high": float,
            "confidence": float,
            "p_value": float,
            "details_json": str,
        },
        pk="id",
    )


RESULTS_COLUMNS = {"id": str, "audit_id": str, "adversary": str, "comparison": str, "control": str, "category": str,
                   "split": str, "metric": str, "headline": int, "judge_mode": str, "n": int, "estimate": float,
                   "ci_low": float, "ci_high": float, "confidence": float, "ci_method": str, "p_value": float,
                   "p_holm": float, "p_bh": float, "q": int, "t_json": str, "details_json": str, "created_at": str}


@migrations()
def m006_typed_results(db: sqlite_utils.Database) -> None:
    """``results`` in the shape of ``audit.results.ResultRow``: ``advantage`` → ``estimate`` (of its ``metric``),
    the headline a flag on the selected adversary's row and the control a column (no more ``headline`` and
    ``provenance:NAME`` strings), and the judge mode as data. Every number is kept; rows are re-keyed."""
    old = [_parse_json_cols(r, "t_json", "details_json") for r in db["results"].rows]
    db["results"].drop()
    db["results"].create(RESULTS_COLUMNS, pk="id")
    db["results"].insert_all(_result_columns(r["audit_id"], ResultRow.from_legacy(r, r["t"], r["details"]),
                                             r["created_at"]) for r in old)


SCHEMA_MIGRATIONS = [m.name for m in migrations._migrations]


# --------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------


def _is_wal(path: Path) -> bool:
    """Whether the SQLite header says WAL mode (bytes 18 and 19 are 2); false for anything else."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False  # unreadable: connecting says so in one line
    return header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """One line naming the file: a damaged one says so and what to do, anything else says why it is unusable."""
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_CORRUPT":
        return StoreError(f"{path}: the database is damaged ({exc}); restore it from a copy")
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return StoreError(f"{path}: not a usable audit database ({exc}): not SQLite, or its first page is damaged")
    return StoreError(f"{path}: not a usable audit database ({exc})")


def _database_errors_named(method):
    """Turn an SQLite failure inside ``method`` into a ``StoreError`` naming the file (damage shows on reading).

    A damaged page is found only when a query reaches it, so every public
    method of the store says so in one line, not a traceback. Integrity and
    programming errors stay exceptions: they are bugs, not a file's state.
    """

    @functools.wraps(method)
    def named(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from exc

    return named


def _database_errors_named_in_every_method(cls):
    """Class decorator: ``_database_errors_named`` on every public method (classmethods handle their own)."""
    for name, method in list(vars(cls).items()):
        if inspect.isfunction(method) and not name.startswith("_"):
            setattr(cls, name, _database_errors_named(method))
    return cls


@_database_errors_named_in_every_method
class Store:
    """An open audit database. Use ``Store.open(path)``."""

    def __init__(self, db: sqlite_utils.Database, path: Path):
        self.db = db
        self.path = path

    # ---- opening -----------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool = True) -> "Store":
        """Open (or create) the database at ``path`` and apply pending migrations: for a database of this audit.

        Raises ``StoreError`` for a missing file when ``create`` is false, a
        path that cannot be written, a file that is not SQLite, an SQLite file
        of another program (refused before anything is written to it), or a
        database written by a newer distill-audit. A database from elsewhere
        is opened with ``open_readonly``.
        """
        path = Path(path)
        if not create and not path.exists():
            raise StoreError(f"{path}: no such audit database")
        if path.exists() and path.is_dir():
            raise StoreError(f"{path}: is a directory, not an audit database")
        if not path.exists():
            parent = path.parent if str(path.parent) else Path(".")
            if not parent.exists():
                raise StoreError(f"{path}: folder {parent} does not exist")
            if not os.access(parent, os.W_OK):
                raise StoreError(f"{path}: cannot create the database, folder {parent} is not writable")
        store = cls._connect(path, str(path), timeout=30, isolation_level=None)
        with store._closed_on_failure():
            store._check_is_audit_database(empty_ok=True)  # before the first write: another program's file stays as it is
            store._check_not_newer()
            store.db.execute("PRAGMA journal_mode=WAL")
            store.db.execute("PRAGMA synchronous=NORMAL")
            store.db.execute("PRAGMA foreign_keys=ON")
            migrations.apply(store.db)
        return store

    @classmethod
    def _connect(cls, path: Path, target: str, **options: Any) -> "Store":
        try:
            return cls(sqlite_utils.Database(sqlite3.connect(target, **options)), path)
        except sqlite3.DatabaseError as exc:
            raise _store_error(path, exc) from exc

    @contextlib.contextmanager
    def _closed_on_failure(self) -> Iterator[None]:
        """Checks right after connecting: on any failure the connection is closed, SQLite's errors named."""
        try:
            yield
        except BaseException as exc:
            self.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise _store_error(self.path, exc) from exc
            raise

    def _check_is_audit_database(self, *, empty_ok: bool) -> None:
        """Refuse an SQLite file that another program made (tables, but no distill-audit schema record)."""
        if migrations.applied(self.db):
            return
        if empty_ok and not self.db.table_names():
            return
        raise StoreError(f"{self.path}: an SQLite file, but not an audit database (no distill-audit schema in it); "
                         "refusing to read or change it")

    def _check_not_newer(self) -> None:
        applied = [m.name for m in migrations.applied(self.db)]
        unknown = [name for name in applied if name not in SCHEMA_MIGRATIONS]
        if unknown:
            raise StoreError(
                f"{self.path}: written by a newer distill-audit (schema step {unknown[-1]} is unknown "
                f"to version {__version__}); upgrade distill-audit to read it"
            )

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _write(self):
        """A transaction; a read-only database turns into one clear error."""
        return _WriteGuard(self)

    # ---- audits --------------------------------------------------------------

    def audit(self) -> dict | None:
        """The audit this database holds, or None if collection never started."""
        rows = list(self.db["audits"].rows_where(order_by="created_at", limit=1))
        return rows[0] if rows else None

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
            return existing["id"]
        audit_id = uuid.uuid4().hex[:16]
        with self._write():
            self.db["audits"].insert(
                {
                    "id": audit_id,
                    "created_at": _now(),
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
        return audit_id

    def update_audit(self, audit_id: str, **fields: Any) -> None:
        if "config" in fields:
            fields["config_json"] = canonical_json(fields.pop("config"))
        with self._write():
            self.db["audits"].update(audit_id, fields)

    # ---- models --------------------------------------------------------------

    def add_model(self, audit_id: str, *, name: str, role: str, spec: str, description: dict) -> str:
        """Record a model by its name in this audit (teacher, suspect, control:NAME, judge, ...)."""
        model_id = f"{audit_id}:{name}"
        row = {
            "id": model_id,
            "audit_id": audit_id,
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

    def models(self, audit_id: str, role: str | None = None) -> list[dict]:
        where, args = "audit_id = ?", [audit_id]
        if role:
            where += " and role = ?"
            args.append(role)
        return list(self.db["models"].rows_where(where, args, order_by="rowid"))

    def model(self, audit_id: str, name: str) -> dict | None:
        return next(iter(self.db["models"].rows_where("id = ?", [f"{audit_id}:{name}"])), None)

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
                    "secret_seed_hash": suite.secret_seed_hash,
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

    def select_probes(self, audit_id: str, probe_ids: list[str], purpose: str = "eval", first_rank: int = 0) -> None:
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
            [audit_id, other, json.dumps(probe_ids)],
        ).fetchone()
        if clash:
            raise StoreError(
                f"{self.path}: probe {clash[0]} is already selected for {other}; "
                f"an audit never evaluates on training probes"
            )
        with self._write():
            self.db["selections"].insert_all(
                (
                    {"audit_id": audit_id, "probe_id": pid, "purpose": purpose, "rank": i}
                    for i, pid in enumerate(probe_ids, start=first_rank)
                ),
                pk=("audit_id", "probe_id", "purpose"),
                ignore=True,
            )

    def selected_probes(self, audit_id: str, purpose: str = "eval") -> list[dict]:
        """The probes selected for ``purpose``, in selection order, with parsed references."""
        rows = self.db.execute(
            "select p.*, s.rank from selections s join probes p on p.id = s.probe_id "
            "where s.audit_id = ? and s.purpose = ? order by s.rank",
            [audit_id, purpose],
        ).fetchall()
        cols = [d[0] for d in self.db.execute("select p.*, 0 as rank from probes p limit 0").description]
        return [_with_reference(dict(zip(cols, r))) for r in rows]

    def probe(self, probe_id: str) -> dict | None:
        row = next(iter(self.db["probes"].rows_where("id = ?", [probe_id])), None)
        return _with_reference(row) if row else None

    # ---- queries and responses -----------------------------------------------

    @staticmethod
    def query_id(audit_id: str, model_id: str, probe_id: str, sample: int, purpose: str = "eval") -> str:
        return _key(audit_id, model_id, probe_id, sample, purpose)

    def completed_queries(self, audit_id: str, model_id: str, purpose: str = "eval") -> set[tuple[str, int]]:
        """(probe_id, sample) pairs already answered: collection skips them on resume."""
        rows = self.db.execute(
            "select probe_id, sample from queries where audit_id = ? and model_id = ? and purpose = ? "
            "and status = 'ok'",
            [audit_id, model_id, purpose],
        ).fetchall()
        return {(r[0], r[1]) for r in rows}

    def record_answers(self, audit_id: str, model_id: str, answers: list[dict], purpose: str = "eval") -> None:
        """Record a batch of answered or failed queries in one transaction.

        Each answer is a dict with ``probe_id``, ``sample``, ``params`` and
        either ``error`` (a failed query: recorded, retried on resume) or the
        response fields ``text``, ``tokens_in``, ``tokens_out``,
        ``finish_reason``, ``latency_s``, ``device_s`` and optionally
        ``logprobs``, ``request``, ``raw``, ``started_at``.
        """
        with self._write():
            for a in answers:
                qid = self.query_id(audit_id, model_id, a["probe_id"], a["sample"], purpose)
                prior = self.db.execute("select attempts from queries where id = ?", [qid]).fetchone()
                failed = a.get("error") is not None
                self.db["queries"].upsert(
                    {
                        "id": qid,
                        "audit_id": audit_id,
                        "model_id": model_id,
                        "probe_id": a["probe_id"],
                        "sample": a["sample"],
                        "purpose": purpose,
                        "params_json": canonical_json(a.get("params", {})),
                        "status": "error" if failed else "ok",
                        "error": a.get("error"),
                        "attempts": (prior[0] if prior else 0) + 1,
                        "started_at": a.get("started_at"),
                        "finished_at": _now(),
                        "latency_s": a.get("latency_s"),
                    },
                    pk="id",
                )
                if failed:
                    continue
                transcript = _transcript(model_id, a["probe_id"], a["sample"], purpose, a.get("params", {}),
                                         a["text"], a.get("top_logprobs"))
                self.db["responses"].upsert(
                    {
                        "query_id": qid,
                        "audit_id": audit_id,
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

    def responses(self, audit_id: str, model_id: str | None = None, purpose: str = "eval") -> list[dict]:
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
        args: list[Any] = [audit_id, purpose]
        if model_id:
            sql += " and r.model_id = ?"
            args.append(model_id)
        sql += " order by r.model_id, r.probe_id, r.sample"
        cur = self.db.execute(sql, args)
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(cols, row))
            lp = d.pop("logprobs_json")
            d["logprobs"] = json.loads(lp) if lp else None
            out.append(d)
        return out

    def top_distributions(self, audit_id: str, model_id: str, purpose: str = "eval") -> dict[str, bytes]:
        """query id -> the packed top-k distributions (``audit.topk.TopK.unpack``) of each answer that has them."""
        if not self._holds_top_logprobs():
            return {}
        rows = self.db.execute(
            "select r.query_id, r.top_logprobs from responses r join queries q on q.id = r.query_id "
            "where r.audit_id = ? and r.model_id = ? and q.purpose = ? and r.top_logprobs is not null",
            [audit_id, model_id, purpose]).fetchall()
        return {qid: blob for qid, blob in rows}

    def _holds_top_logprobs(self) -> bool:
        """Whether the schema has the top-k column: a database read as it is (``open_readonly``) may predate it."""
        return "top_logprobs" in self.db["responses"].columns_dict

    def reported_cost(self, audit_id: str) -> tuple[float, int]:
        """(sum, answers) of the prices endpoints reported in their replies (``usage.cost``), for --max-cost."""
        row = self.db.execute(
            "select total(json_extract(raw_json, '$.usage.cost')), count(json_extract(raw_json, '$.usage.cost')) "
            "from responses where audit_id = ? and json_valid(raw_json)", [audit_id]).fetchone()
        return float(row[0]), int(row[1])

    def query_errors(self, audit_id: str) -> list[dict]:
        return list(self.db["queries"].rows_where("audit_id = ? and status = 'error'", [audit_id]))

    def last_answer_at(self, audit_id: str) -> str | None:
        """When the last evaluation answer was recorded: results older than this are stale."""
        row = self.db.execute("select max(finished_at) from queries where audit_id = ? and purpose = 'eval' "
                              "and status = 'ok'", [audit_id]).fetchone()
        return row[0] if row else None

    # ---- judgements ----------------------------------------------------------

    @staticmethod
    def judgement_id(audit_id: str, judge_id: str, comparison: str, probe_id: str, sample: int, order: str) -> str:
        return _key(audit_id, judge_id, comparison, probe_id, sample, order)

    def judged_keys(self, audit_id: str, judge_id: str, comparison: str) -> set[tuple[str, int, str]]:
        rows = self.db.execute(
            "select probe_id, sample, \"order\" from judgements where audit_id = ? and judge_id = ? and comparison = ?",
            [audit_id, judge_id, comparison],
        ).fetchall()
        return {(r[0], r[1], r[2]) for r in rows}

    def record_judgements(self, audit_id: str, judgements: list[dict]) -> None:
        """Record judge verdicts; each dict has the judgements columns except id, audit_id and content_hash."""
        with self._write():
            for j in judgements:
                jid = self.judgement_id(audit_id, j["judge_id"], j["comparison"], j["probe_id"], j["sample"], j["order"])
                row = {"id": jid, "audit_id": audit_id, **j}
                row["content_hash"] = content_hash(
                    {k: row.get(k) for k in ("judge_id", "comparison", "probe_id", "sample", "order",
                                             "first_query_id", "second_query_id", "verdict", "raw_output")}
                )
                self.db["judgements"].upsert(row, pk="id")

    def judgements(self, audit_id: str, comparison: str | None = None) -> list[dict]:
        where, args = "audit_id = ?", [audit_id]
        if comparison:
            where += " and comparison = ?"
            args.append(comparison)
        return list(self.db["judgements"].rows_where(where, args, order_by="probe_id, sample, \"order\""))

    # ---- results -------------------------------------------------------------

    def record_results(self, audit_id: str, results: list[ResultRow]) -> None:
        """Upsert result rows keyed by their natural key (``audit.results.KEY``)."""
        with self._write():
            for r in results:
                self.db["results"].upsert(_result_columns(audit_id, r, _now()), pk="id")

    def clear_results(self, audit_id: str) -> None:
        """Drop derived rows before a fresh analysis, so stale results never mix with new ones."""
        with self._write():
            self.db.execute("delete from results where audit_id = ?", [audit_id])
            self.db.execute("delete from budget_points where audit_id = ?", [audit_id])
            self.db.execute("delete from sequence_points where audit_id = ?", [audit_id])

    def results(self, audit_id: str, **filters: Any) -> list[ResultRow]:
        """The audit's result rows whose fields equal ``filters``; a database from before m006 (read as it is,
        never migrated) is read through ``ResultRow.from_legacy``."""
        read = ResultRow.from_columns if "estimate" in self.db["results"].columns_dict else ResultRow.from_legacy
        rows = self.db["results"].rows_where("audit_id = ?", [audit_id],
                                             order_by="adversary, comparison, category, split")
        parsed = (_parse_json_cols(r, "t_json", "details_json") for r in rows)
        typed = [read(r, r["t"], r["details"]) for r in parsed]
        return [r for r in typed if all(getattr(r, k) == v for k, v in filters.items())]

    def results_written(self, audit_id: str) -> tuple[str | None, str | None]:
        """When the audit's first and last result rows were written: results older than a response are stale."""
        return tuple(self.db.execute("select min(created_at), max(created_at) from results where audit_id = ?",
                                     [audit_id]).fetchone())

    def record_budget_points(self, audit_id: str, points: list[dict]) -> None:
        with self._write():
            for p in points:
                p = dict(p)
                pid = _key(audit_id, p["comparison"], p["adversary"], p["strategy"], p["q"])
                self.db["budget_points"].upsert(
                    {"id": pid, "audit_id": audit_id,
                     "details_json": canonical_json(p.pop("details", None) or {}), **p},
                    pk="id",
                )

    def record_sequence_points(self, audit_id: str, points: list[dict]) -> None:
        """Replace the audit's sequence points (they are derived from the responses in one pass)."""
        with self._write():
            self.db.execute("delete from sequence_points where audit_id = ?", [audit_id])
            for p in points:
                p = dict(p)
                pid = _key(audit_id, p["comparison"], p["adversary"], p["round"])
                self.db["sequence_points"].insert(
                    {"id": pid, "audit_id": audit_id, "details_json": canonical_json(p.pop("details", None) or {}),
                     **p}, pk="id")

    def sequence_points(self, audit_id: str) -> list[dict]:
        if not self.db["sequence_points"].exists():  # a database read as it is, from before m005
            return []
        rows = self.db["sequence_points"].rows_where("audit_id = ?", [audit_id], order_by="comparison, adversary, round")
        return [_parse_json_cols(r, "details_json") for r in rows]

    def budget_points(self, audit_id: str) -> list[dict]:
        rows = self.db["budget_points"].rows_where("audit_id = ?", [audit_id], order_by="comparison, adversary, strategy, q")
        return [_parse_json_cols(r, "details_json") for r in rows]

    # ---- costs ---------------------------------------------------------------

    def model_costs(self, audit_id: str) -> list[dict]:
        """Per model: queries q and compute t (tokens, wall and device seconds, FLOP estimate) of the evaluation.

        Derived from the recorded queries, so it can never drift from them.
        Only evaluation queries count: a teacher's answers to training probes
        (``distill`` and ``leakage`` record them in the same database) are the
        cost of a distillation, not of telling models apart. The FLOP estimate
        is 2 x parameters x tokens processed, where the parameter count is known.
        """
        cur = self.db.execute(
            "select m.id as model_id, m.name, m.role, m.spec, m.param_count, "
            "count(q.id) as queries, sum(q.status = 'ok') as answered, sum(q.status = 'error') as errors, "
            "coalesce(sum(r.tokens_in), 0) as tokens_in, coalesce(sum(r.tokens_out), 0) as tokens_out, "
            "coalesce(sum(r.latency_s), 0) as wall_s, coalesce(sum(r.device_s), 0) as device_s "
            "from models m left join queries q on q.model_id = m.id and q.purpose = 'eval' "
            "left join responses r on r.query_id = q.id where m.audit_id = ? group by m.id order by m.rowid",
            [audit_id],
        )
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(cols, row))
            d["flops"] = 2.0 * d["param_count"] * (d["tokens_in"] + d["tokens_out"]) if d["param_count"] else None
            out.append(d)
        return out

    def record_cost(self, audit_id: str, *, subject: str, stage: str, queries: int = 0, tokens_in: int = 0,
                    tokens_out: int = 0, wall_s: float = 0.0, device_s: float = 0.0,
                    flops: float | None = None, details: dict | None = None) -> None:
        """Record the compute of a stage that is not a collection query (judge, embedder, training, analysis)."""
        with self._write():
            self.db["costs"].upsert(
                {
                    "id": _key(audit_id, subject, stage),
                    "audit_id": audit_id,
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

    def costs(self, audit_id: str) -> list[dict]:
        rows = self.db["costs"].rows_where("audit_id = ?", [audit_id], order_by="stage, subject")
        return [_parse_json_cols(r, "details_json") for r in rows]

    # ---- embeddings cache ----------------------------------------------------

    def cached_embeddings(self, embedder: str, text_hashes: list[str]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for start in range(0, len(text_hashes), 500):
            chunk = text_hashes[start:start + 500]
            rows = self.db.execute(
                "select text_hash, dim, vector from embeddings where embedder = ? and text_hash in "
                "(select value from json_each(?))",
                [embedder, json.dumps(chunk)],
            ).fetchall()
            for h, dim, blob in rows:
                out[h] = list(struct.unpack(f"<{dim}f", blob))
        return out

    def cache_embeddings(self, embedder: str, vectors: dict[str, list[float]]) -> None:
        with self._write():
            self.db["embeddings"].upsert_all(
                (
                    {"text_hash": h, "embedder": embedder, "dim": len(v), "vector": struct.pack(f"<{len(v)}f", *v)}
                    for h, v in vectors.items()
                ),
                pk=("text_hash", "embedder"),
            )

    # ---- artifacts -------------------------------------------------------------

    def record_artifact(self, audit_id: str, path: str, kind: str, sha256: str, size: int) -> None:
        with self._write():
            self.db["artifacts"].upsert(
                {"id": _key(audit_id, path), "audit_id": audit_id, "path": path, "kind": kind,
                 "sha256": sha256, "bytes": size, "created_at": _now()},
                pk="id",
            )

    def artifacts(self, audit_id: str) -> list[dict]:
        return list(self.db["artifacts"].rows_where("audit_id = ?", [audit_id], order_by="path"))

    def backup(self, dest: str | os.PathLike) -> None:
        """Copy the database to ``dest`` with SQLite's backup API, as one self-contained file.

        The copy is a consistent snapshot even while another process writes
        (WAL), and it is switched to a rollback journal so that it has no
        -wal/-shm companions: a report signs its sha256, so it must be one
        file that reading never changes.
        """
        dest = Path(dest)
        if dest.exists():
            dest.unlink()
        target = sqlite3.connect(str(dest), isolation_level=None)
        try:
            self.db.conn.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()

    @classmethod
    def open_readonly(cls, path: str | os.PathLike) -> "Store":
        """Open a database this command did not create for reading only: no migrations, never a written byte.

        For a signed report's database copy (whose hash must not change by
        being read) and a ``replay:`` source. The file is read as it is,
        ``immutable``: a journal or WAL beside it is ignored, so a crafted
        ``-journal`` is never rolled into it. Only a WAL database with a live
        ``-wal`` companion (an audit another process may still be writing) is
        read through its WAL, with ``mode=ro``. A file at an older schema is
        read as it is, never migrated.
        """
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: no such audit database")
        live = _is_wal(path) and Path(f"{path}-wal").exists()
        store = cls._connect(path, f"{path.resolve().as_uri()}?mode=ro{'' if live else '&immutable=1'}", uri=True)
        with store._closed_on_failure():
            store._check_is_audit_database(empty_ok=False)
            store._check_not_newer()
        return store

    # ---- distillation runs ---------------------------------------------------

    def start_distill_run(self, audit_id: str, *, teacher_id: str, student_spec: str, adapter_dir: str,
                          config: dict) -> str:
        run_id = _key(audit_id, teacher_id, student_spec, adapter_dir, canonical_json(config))
        with self._write():
            self.db["distill_runs"].insert(
                {"id": run_id, "audit_id": audit_id, "teacher_id": teacher_id, "student_spec": student_spec,
                 "adapter_dir": adapter_dir, "config_json": canonical_json(config), "status": "training",
                 "created_at": _now(), "finished_at": None},
                pk="id",
                ignore=True,
            )
        return run_id

    def finish_distill_run(self, run_id: str, status: str = "complete") -> None:
        with self._write():
            self.db["distill_runs"].update(run_id, {"status": status, "finished_at": _now()})

    def log_distill_steps(self, run_id: str, steps: list[dict]) -> None:
        with self._write():
            self.db["distill_log"].upsert_all(({"run_id": run_id, **s} for s in steps), pk=("run_id", "step"))

    def distill_log(self, run_id: str) -> list[dict]:
        return list(self.db["distill_log"].rows_where("run_id = ?", [run_id], order_by="step"))

    def distill_runs(self, audit_id: str) -> list[dict]:
        return list(self.db["distill_runs"].rows_where("audit_id = ?", [audit_id], order_by="created_at"))

    # ---- integrity -------------------------------------------------------------

    def transcript_hashes(self, audit_id: str) -> list[str]:
        """Content hashes of every response and judgement, in a fixed order: the Merkle leaves."""
        rows = self.db.execute(
            "select content_hash from (select query_id as k, content_hash from responses where audit_id = ? "
            "union all select id as k, content_hash from judgements where audit_id = ?) order by k",
            [audit_id, audit_id],
        ).fetchall()
        return [r[0] for r in rows]

    def verify_transcripts(self, audit_id: str) -> list[str]:
        """Query ids whose stored response no longer matches its content hash."""
        bad = []
        cur = self.db.execute(
            f"select r.query_id, r.model_id, r.probe_id, r.sample, q.purpose, q.params_json, r.text, "
            f"{'r.top_logprobs' if self._holds_top_logprobs() else 'null'}, "
            "r.content_hash from responses r join queries q on q.id = r.query_id where r.audit_id = ?",
            [audit_id],
        )
        for qid, mid, pid, sample, purpose, params, text, top, stored in cur.fetchall():
            expected = content_hash(_transcript(mid, pid, sample, purpose, json.loads(params or "{}"), text, top))
            if expected != stored:
                bad.append(qid)
        return bad


_COMPANIONS = ("-wal", "-shm", "-journal")  # the files SQLite keeps beside a database, named after it


def set_aside(path: str | os.PathLike) -> Path:
    """Rename the audit database at ``path`` to the first free ``PATH.N``, its companions with it; never deletes.

    For ``--new-run``: the earlier audit stays whole under the new name. Its
    WAL is checkpointed first, so the renamed file holds every committed row
    by itself; companions are renamed before the file, so an interruption
    never leaves a new database beside an old WAL.
    """
    path = Path(path)
    with Store.open(path, create=False) as store:
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = 1
    while any(Path(f"{path}.{n}{suffix}").exists() for suffix in ("", *_COMPANIONS)):
        n += 1
    target = Path(f"{path}.{n}")
    try:
        for suffix in (*_COMPANIONS, ""):
            if Path(f"{path}{suffix}").exists():
                Path(f"{path}{suffix}").rename(f"{target}{suffix}")
    except OSError as exc:
        raise StoreError(f"{path}: cannot move the earlier audit to {target} ({exc.strerror})") from exc
    return target


class _WriteGuard:
    """``db.atomic()`` that turns a read-only or locked database into a ``StoreError``."""

    def __init__(self, store: Store):
        self.store = store
        self._ctx = store.db.atomic()

    def __enter__(self):
        return self._ctx.__enter__()

    def __exit__(self, exc_type, exc, tb):
        result = self._ctx.__exit__(exc_type, exc, tb)
        if isinstance(exc, sqlite3.OperationalError) and (
            "readonly" in str(exc) or "read-only" in str(exc) or "locked" in str(exc)
        ):
            raise StoreError(f"{self.store.path}: cannot write ({exc})") from exc
        return result


def _transcript(model_id: str, probe_id: str, sample: int, purpose: str, params: dict, text: str,
                top_logprobs: bytes | None) -> dict:
    """What a response's content hash covers: who was asked what, how, and what came back (with the sha256
    of its top-k blob when one was recorded; absent otherwise, so earlier databases keep their hashes)."""
    transcript = {"model_id": model_id, "probe_id": probe_id, "sample": sample, "purpose": purpose,
                  "params": params, "text": text}
    if top_logprobs is not None:
        transcript["top_logprobs_sha256"] = hashlib.sha256(top_logprobs).hexdigest()
    return transcript


def _result_columns(audit_id: str, row: ResultRow, created_at: str) -> dict:
    return {"id": _key(audit_id, *row.key()), "audit_id": audit_id, **row.columns(), "t_json": canonical_json(row.t),
            "details_json": canonical_json(row.details), "created_at": created_at}


def _parse_json_cols(row: dict, *cols: str) -> dict:
    for col in cols:
        key = col.removesuffix("_json")
        row[key] = json.loads(row.pop(col) or "{}")
    return row


def _with_reference(row: dict) -> dict:
    ref = row.pop("reference_json", None)
    row["reference"] = json.loads(ref) if ref else None
    return row


def iter_rows(store: Store, table: str) -> Iterator[dict]:
    """All rows of a table, for exports and tests."""
    yield from store.db[table].rows
