"""Opening, checking and closing an audit database file, and the file-level operations on it.

A file is opened for this audit (created and migrated) or read as it is
(never a written byte), and refused in one line when it is not an audit
database of this version. Every public method of the store turns SQLite's
errors into a ``StoreError`` naming the file.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import sqlite_utils

from audit import __version__
from audit.errors import StoreError
from audit.store.schema import SCHEMA_MIGRATIONS, applied_steps, migrations


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


def database_errors_named(cls):
    """Class decorator: ``_database_errors_named`` on every public method the class itself defines (classmethods
    handle their own); each class of the store carries it."""
    for name, method in list(vars(cls).items()):
        if inspect.isfunction(method) and not name.startswith("_"):
            setattr(cls, name, _database_errors_named(method))
    return cls


@database_errors_named
class Connection:
    """An open audit database file: how it is opened, checked, written in transactions, copied and closed."""

    def __init__(self, db: sqlite_utils.Database, path: Path):
        self.db = db
        self.path = path

    # ---- opening -----------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool = True) -> Self:
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
    def _connect(cls, path: Path, target: str, **options: Any) -> Self:
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
        if applied_steps(self.db):
            return
        if empty_ok and not self.db.table_names():
            return
        raise StoreError(f"{self.path}: an SQLite file, but not an audit database (no distill-audit schema in it); "
                         "refusing to read or change it")

    def _check_not_newer(self) -> None:
        unknown = [name for name in applied_steps(self.db) if name not in SCHEMA_MIGRATIONS]
        if unknown:
            raise StoreError(
                f"{self.path}: written by a newer distill-audit (schema step {unknown[-1]} is unknown "
                f"to version {__version__}); upgrade distill-audit to read it"
            )

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _write(self):
        """A transaction; a read-only database turns into one clear error."""
        return _WriteGuard(self)

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
    def open_readonly(cls, path: str | os.PathLike) -> Self:
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


class _WriteGuard:
    """``db.atomic()`` that turns a read-only or locked database into a ``StoreError``."""

    def __init__(self, store: Connection):
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


_COMPANIONS = ("-wal", "-shm", "-journal")  # the files SQLite keeps beside a database, named after it


def set_aside(path: str | os.PathLike) -> Path:
    """Rename the audit database at ``path`` to the first free ``PATH.N``, its companions with it; never deletes.

    For ``--new-run``: the earlier audit stays whole under the new name. Its
    WAL is checkpointed first, so the renamed file holds every committed row
    by itself; companions are renamed before the file, so an interruption
    never leaves a new database beside an old WAL.
    """
    path = Path(path)
    with Connection.open(path, create=False) as store:
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
