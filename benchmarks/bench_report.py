"""Report speed on a 5,000-probe audit of 3 models (teacher, suspect, one control), with judge verdicts.

Builds a synthetic analysed audit database (tests/helpers_report.py: 4,000 public + 1,000 private
probes, 15,000 responses, 10,000 judge verdicts, results, budget points), then times each stage of
the report: reading the database, HTML, PDF, copying the database and signing, and verifying; and
the whole `render_report` end to end. Target: the whole report in under 60 s on a 2-core CPU.

    .venv/bin/python benchmarks/bench_report.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers_report import build_report_db  # noqa: E402

from audit.report import render, render_report, signing  # noqa: E402
from audit.store import Store  # noqa: E402


def timed(label: str, fn, timings: dict):
    start = time.perf_counter()
    value = fn()
    timings[label] = time.perf_counter() - start
    print(f"  {label:<34} {timings[label]:7.2f} s", flush=True)
    return value


def sign_stage(report_dir: Path, key: Path) -> None:
    """What render_report does after rendering: the predicate from the copy, every file hashed, signed."""
    with Store.open_readonly(report_dir / "audit.db") as copy:
        predicate = signing.evaluation_predicate(copy, tool_sha256=signing.tool_digest())
    payload = signing.statement_bytes(signing.statement(report_dir, ["report.html", "report.pdf", "audit.db"], predicate))
    signing.write_signed(report_dir, payload, signing.load_private_key(key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Write into this folder and keep it.")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    base.mkdir(parents=True, exist_ok=True)
    db = base / "audit.db"
    for stale in base.glob("audit.db*"):
        stale.unlink()
    t: dict[str, float] = {}
    print(f"report benchmark in {base}")
    timed("build synthetic database", lambda: build_report_db(db, n_probes=4000), t)
    if not (base / "key").exists():
        signing.keygen(base / "key")

    print("stages, one at a time:")
    stage_dir = base / "stages"
    stage_dir.mkdir(exist_ok=True)
    with Store.open(db, create=False) as store:
        ctx = timed("read database + figures", lambda: render.gather(store, keyid=None, tool_digest="x"), t)
        html = timed("HTML", lambda: render.render_html(ctx), t)
        timed("PDF", lambda: render.render_pdf(html, stage_dir / "report.pdf"), t)
        timed("database copy (backup API)", lambda: store.backup(stage_dir / "audit.db"), t)
    (stage_dir / "report.html").write_text(html, encoding="utf-8")
    timed("hash + statement + DSSE signature", lambda: sign_stage(stage_dir, base / "key"), t)

    print("end to end:")
    out = base / "report"
    timed("render_report (HTML+PDF+sign)", lambda: render_report(db, out, sign_key=base / "key"), t)
    timed("verify", lambda: signing.verify_report(out, public_key=base / "key.pub"), t)
    with Store.open_readonly(out / "audit.db") as copy:
        n_resp = copy.db.execute("select count(*) from responses").fetchone()[0]
        n_judge = copy.db.execute("select count(*) from judgements").fetchone()[0]
    pages = len(__import__("pypdf").PdfReader(str(out / "report.pdf")).pages)
    print(f"summary: {n_resp:,} responses, {n_judge:,} judge verdicts, {pages} PDF pages, "
          f"HTML {(out / 'report.html').stat().st_size / 1e3:.0f} kB, database {(out / 'audit.db').stat().st_size / 1e6:.1f} MB")
    print(f"summary: HTML {t['read database + figures'] + t['HTML']:.1f} s (incl. reading), PDF {t['PDF']:.1f} s, "
          f"copy + signing {t['database copy (backup API)'] + t['hash + statement + DSSE signature']:.1f} s, "
          f"whole report {t['render_report (HTML+PDF+sign)']:.1f} s (target < 60 s), verify {t['verify']:.1f} s")


if __name__ == "__main__":
    main()
