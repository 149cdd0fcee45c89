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
"""

from __future__ import annotations

import os
from pathlib import Path

from audit.errors import AuditError
from audit.report import render, signing
from audit.store import Store

HTML = "report.html"
PDF = "report.pdf"
# Everything a previous report may have left in the folder: cleared first so nothing stale is signed or shipped.
_OWN_FILES = (HTML, PDF, signing.MANIFEST, signing.ENVELOPE, signing.PUBLIC_KEY, signing.DATABASE,
              "category-evidence.svg", "budget-curves.svg", "public-vs-private.svg")


def render_report(db_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                  sign_key: str | os.PathLike | None = None, pdf: bool = True) -> str:
    """Write the report folder for the audit in ``db_path``; returns a short summary of what was written."""
    db_path, out_dir = Path(db_path), Path(out_dir)
    private_key = signing.load_private_key(sign_key) if sign_key else None
    keyid = signing.key_id(private_key.public_key()) if private_key else None
    _prepare(out_dir)
    tool_sha256 = signing.tool_digest()
    with Store.open(db_path, create=False) as store:
        audit_id = store.require_audit()["id"]
        ctx = render.gather(store, keyid=keyid, tool_digest=tool_sha256)
        rendered = _write_rendered(ctx, out_dir, pdf)
        for name, kind in rendered:
            _record(store, audit_id, out_dir, name, kind)
        store.backup(out_dir / signing.DATABASE)
        with Store.open_readonly(out_dir / signing.DATABASE) as copy:
            predicate = signing.evaluation_predicate(copy, tool_sha256=tool_sha256)
        names = [name for name, _ in rendered] + [signing.DATABASE]
        payload = signing.statement_bytes(signing.statement(out_dir, names, predicate))
        (out_dir / signing.MANIFEST).write_bytes(payload)
        final = [(signing.DATABASE, "database-copy"), (signing.MANIFEST, "manifest")]
        if private_key is not None:
            signing.write_signed(out_dir, payload, private_key)
            final.append((signing.ENVELOPE, "signature"))
        for name, kind in final:
            _record(store, audit_id, out_dir, name, kind)
    return _summary(out_dir, names, predicate, keyid)


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise AuditError(f"{out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in _OWN_FILES:
            (out_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        raise AuditError(f"{out_dir}: cannot write the report folder ({exc.strerror})") from exc


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


def _record(store: Store, audit_id: str, out_dir: Path, name: str, kind: str) -> None:
    path = out_dir / name
    store.record_artifact(audit_id, name, kind, signing.file_sha256(path), path.stat().st_size)


def _summary(out_dir: Path, names: list[str], predicate: dict, keyid: str | None) -> str:
    lines = [f"wrote {out_dir}: {', '.join(sorted(names))}, {signing.MANIFEST}",
             f"{len(predicate['claims'])} claims; {predicate['transcripts']['count']} transcripts, Merkle root "
             f"{predicate['transcripts']['merkle_root']['sha256']}"]
    if keyid:
        lines.append(f"signed: {signing.ENVELOPE} (Ed25519 key id {keyid}); check with `distill-audit verify {out_dir}`")
    else:
        lines.append("unsigned: no --sign-key given; the report says so on its first page")
    return "\n".join(lines)
