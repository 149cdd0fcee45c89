"""The report stage: render an audit database into HTML, PDF and figures, copy the database, sign the lot.

Order matters because the database copy is itself a signed artifact:

1. render the figures, ``report.html`` and ``report.pdf`` from the audit
   database, and record their hashes in its ``artifacts`` table;
2. copy the database into the report folder with SQLite's backup API (a
   consistent snapshot even under WAL), so the copy already lists the
   rendered files; the copy is never written again;
3. hash every file, build the in-toto statement from the *copy* (claims,
   Merkle root) so it states exactly what a verifier will recompute, write
   ``manifest.json`` and, with a key, the signed ``report.intoto.jsonl``;
4. record the copy, manifest and envelope in the original database.

All of it is written into a fresh sibling folder that then takes the report
folder's place by rename, so a failure anywhere leaves the previous report
whole. The folder is replaced as a whole, so ``--out`` must be a folder of
its own: one that holds the database, or anything an earlier report would
not hold, is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from audit.errors import AuditError
from audit.report import render, signing
from audit.store import Store

HTML = "report.html"
PDF = "report.pdf"
FIGURES = ("category-evidence.svg", "budget-curves.svg", "public-vs-private.svg", "confidence-sequences.svg")
LEAKAGE_FIGURE = "leakage-curves.svg"  # the leakage report's (audit.report.leakage): report.html and this
# Every name a report folder of this tool holds: a folder holding anything else is never replaced.
REPORT_NAMES = frozenset((HTML, PDF, *FIGURES, LEAKAGE_FIGURE, signing.MANIFEST, signing.ENVELOPE,
                          signing.PUBLIC_KEY, signing.DATABASE))
# Companions SQLite may leave beside the copy when rendering is killed mid-backup: only in our own sibling folders.
_BACKUP_LEFTOVERS = frozenset(f"{signing.DATABASE}{suffix}" for suffix in ("-journal", "-wal", "-shm"))
# ".<report folder>.distill-audit-<random>": the sibling folders a report is rendered into and an old one set aside in.
_SIBLING_MARK = ".distill-audit-"


def render_report(db_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                  sign_key: str | os.PathLike | None = None, pdf: bool = True) -> str:
    """Write the report folder for the audit in ``db_path``; returns a short summary of what was written."""

    def rendered(store: Store, staging: Path, keyid: str | None, tool_sha256: str) -> list[tuple[str, str]]:
        return _write_rendered(render.gather(store, keyid=keyid, tool_digest=tool_sha256), staging, pdf)

    names, predicate, keyid = publish(db_path, out_dir, sign_key=sign_key, render_into=rendered,
                                      predicate_of=signing.evaluation_predicate)
    return _summary(out_dir, names, predicate, keyid)


def publish(db_path: str | os.PathLike, out_dir: str | os.PathLike, *, sign_key: str | os.PathLike | None,
            render_into: Callable[[Store, Path, str | None, str], list[tuple[str, str]]],
            predicate_of: Callable[..., dict]) -> tuple[list[str], dict, str | None]:
    """Steps 1 to 4 above for any rendering of an audit database: ``render_into(store, folder, keyid,
    tool_sha256)`` writes the rendered files and names them with their kind; ``predicate_of(copy,
    tool_sha256=...)`` states the claims from the database copy. Returns the signed names, the predicate and
    the key id (None when unsigned)."""
    db_path, out_dir = Path(db_path), Path(out_dir)
    private_key = signing.load_private_key(sign_key) if sign_key else None
    keyid = signing.key_id(private_key.public_key()) if private_key else None
    check_out_dir(db_path, out_dir)
    tool_sha256 = signing.tool_digest()
    with Store.open(db_path, create=False) as store, _replacing(out_dir) as staging:
        rendered = render_into(store, staging, keyid, tool_sha256)
        for name, kind in rendered:
            _record(store, staging, name, kind)
        store.backup(staging / signing.DATABASE)
        with Store.open_readonly(staging / signing.DATABASE) as copy:
            predicate = predicate_of(copy, tool_sha256=tool_sha256)
        names = [name for name, _ in rendered] + [signing.DATABASE]
        payload = signing.statement_bytes(signing.statement(staging, names, predicate))
        (staging / signing.MANIFEST).write_bytes(payload)
        final = [(signing.DATABASE, "database-copy"), (signing.MANIFEST, "manifest")]
        if private_key is not None:
            signing.write_signed(staging, payload, private_key)
            final.append((signing.ENVELOPE, "signature"))
        for name, kind in final:
            _record(store, staging, name, kind)
    return names, predicate, keyid


# ---------------------------------------------------------------------------
# The report folder: refused unless replacing it loses nothing, then replaced in one rename
# ---------------------------------------------------------------------------


def check_out_dir(db_path: Path, out_dir: Path) -> None:
    """Refuse a report folder whose replacement could lose data; a new or empty one, or an earlier report, is fine.

    `run` calls this before collecting, so a wrong ``--out`` is said before hours of work, not after.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise AuditError(f"{out_dir}: exists and is not a folder")
    target, db = out_dir.resolve(), db_path.resolve()
    own_folder = "a report folder is replaced as a whole, so give it a folder of its own, e.g. --out report/"
    if target in (db, *db.parents):
        raise AuditError(f"{out_dir}: holds the audit database {db_path}; {own_folder}")
    cwd = Path.cwd().resolve()
    if target in (cwd, *cwd.parents):
        raise AuditError(f"{out_dir}: is the working folder or holds it; {own_folder}")
    if target.is_dir():
        foreign = _foreign_entry(target, REPORT_NAMES)
        if foreign:
            raise AuditError(f"{out_dir}: holds {foreign}, which no earlier report wrote; {own_folder} "
                             "(or move what is there elsewhere)")


def _foreign_entry(folder: Path, ours: frozenset[str]) -> str | None:
    """The first entry of ``folder`` that is not a plain file named in ``ours`` and in its manifest, if any."""
    listed = _manifest_names(folder)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        raise AuditError(f"{folder}: cannot list the report folder ({exc.strerror})") from exc
    for entry in entries:
        if entry.name not in ours or (listed is not None and entry.name not in listed):
            return repr(entry.name)
        if not entry.is_file(follow_symlinks=False):
            return f"{entry.name!r} (not a plain file)"
    return None


def _manifest_names(folder: Path) -> set[str] | None:
    """What an earlier report's manifest says its folder holds, or None when there is no readable manifest."""
    manifest = folder / signing.MANIFEST
    if manifest.is_symlink() or not manifest.is_file():
        return None
    try:
        subjects = json.loads(manifest.read_bytes())["subject"]
        names = {subject["name"] for subject in subjects}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return names | {signing.MANIFEST, signing.ENVELOPE, signing.PUBLIC_KEY}


@contextmanager
def _replacing(out_dir: Path) -> Iterator[Path]:
    """A fresh sibling folder to write into; on success it takes ``out_dir``'s place, on failure it is removed.

    Renames within one parent folder are atomic, so ``out_dir`` is at every
    moment either the previous report, whole, or the new one, whole (a kill
    between the two renames leaves no folder there, both kept beside it and
    cleaned by the next run).
    """
    target = out_dir.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(target)
        staging = _sibling(target)
        staging.mkdir()
    except OSError as exc:
        raise AuditError(f"{out_dir}: cannot write the report folder ({exc.strerror})") from exc
    try:
        yield staging
        _swap_in(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise AuditError(f"{out_dir}: cannot write the report folder ({exc.strerror}); "
                         "an earlier report there is unchanged") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _sibling(target: Path) -> Path:
    return target.with_name(f".{target.name}{_SIBLING_MARK}{secrets.token_hex(4)}")


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` where ``target`` is; the earlier report is deleted only if it still holds nothing foreign.

    (Should a file have appeared in it while rendering, the old folder stays
    beside the new one under its sibling name, and so does the file.)
    """
    if not os.path.lexists(target):
        staging.rename(target)
        return
    old = _sibling(target)
    target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        old.rename(target)
        raise
    _remove_if_ours(old, REPORT_NAMES)


def _remove_leftovers(target: Path) -> None:
    """Sibling folders an earlier, killed report left behind, if they hold nothing but report files."""
    for leftover in target.parent.glob(f".{target.name}{_SIBLING_MARK}*"):
        if leftover.is_dir() and not leftover.is_symlink():
            _remove_if_ours(leftover, REPORT_NAMES | _BACKUP_LEFTOVERS)


def _remove_if_ours(folder: Path, ours: frozenset[str]) -> None:
    """Delete ``folder`` only when every entry is a plain file with one of our names; otherwise leave it as it is."""
    if _foreign_entry(folder, ours) is None:
        shutil.rmtree(folder, ignore_errors=True)


def _write_rendered(ctx: render.ReportContext, out_dir: Path, pdf: bool) -> list[tuple[str, str]]:
    written = []
    for figure in ctx.figures.values():
        (out_dir / figure.name).write_text(figure.svg, encoding="utf-8")
        written.append((figure.name, "figure"))
    html = render.render_html(ctx)
    (out_dir / HTML).write_text(html, encoding="utf-8")
    written.append((HTML, "report-html"))
    if pdf:
        render.render_pdf(html, out_dir / PDF)
        written.append((PDF, "report-pdf"))
    return written


def _record(store: Store, out_dir: Path, name: str, kind: str) -> None:
    path = out_dir / name
    store.record_artifact(name, kind, signing.file_sha256(path), path.stat().st_size)


def _summary(out_dir: Path, names: list[str], predicate: dict, keyid: str | None) -> str:
    lines = [f"wrote {out_dir}: {', '.join(sorted(names))}, {signing.MANIFEST}",
             f"{len(predicate['claims'])} claims; {predicate['transcripts']['count']} transcripts, Merkle root "
             f"{predicate['transcripts']['merkle_root']['sha256']}"]
    if keyid:
        lines.append(f"signed: {signing.ENVELOPE} (Ed25519 key id {keyid}); check with "
                     f"`distill-audit verify {shlex.quote(str(out_dir))} --key-id {keyid}`")
    else:
        lines.append("unsigned: no --sign-key given; the report says so on its first page")
    return "\n".join(lines)
