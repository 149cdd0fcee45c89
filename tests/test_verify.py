"""Signing and verification: a fresh signed report verifies; every kind of tampering is caught and named."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import stat
from contextlib import closing

import pytest
from click.testing import CliRunner

from audit.cli import cli
from audit.errors import AuditError
from audit.report import render_report
from audit.report import signing
from audit.store import Store, content_hash, transcript_record
from helpers_report import build_report_db


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    signing.keygen(base / "signer")
    signing.keygen(base / "other")
    return {"private": base / "signer", "public": base / "signer.pub", "other_private": base / "other",
            "other_public": base / "other.pub"}


@pytest.fixture(scope="module")
def signed_report(tmp_path_factory, keys):
    base = tmp_path_factory.mktemp("signed")
    build_report_db(base / "audit.db", n_probes=24)
    summary = render_report(base / "audit.db", base / "report", sign_key=keys["private"])
    return {"dir": base / "report", "summary": summary}


@pytest.fixture
def report(signed_report, tmp_path):
    """A private copy of the signed report to tamper with."""
    return shutil.copytree(signed_report["dir"], tmp_path / "report")


def _statement(report_dir) -> dict:
    return json.loads((report_dir / signing.MANIFEST).read_text(encoding="utf-8"))


def _resign(report_dir, stmt: dict, key_path) -> None:
    """What a signer who lies would do: rewrite the statement and sign it again with a valid key."""
    payload = signing.statement_bytes(stmt)
    (report_dir / signing.MANIFEST).write_bytes(payload)
    signing.write_signed(report_dir, payload, signing.load_private_key(key_path))


def _flip_byte(path, offset: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _key_id(public_path) -> str:
    return signing.key_id(signing.load_public_key(public_path))


def _crafted_journal(db, workdir, forge_sql: str) -> bytes:
    """A hot rollback journal that SQLite would roll into ``db``, turning it into ``db`` after ``forge_sql``.

    A rollback journal holds the pages as they were before a transaction: so
    the forger commits the forged version, starts a transaction that touches
    the same pages, and keeps the journal (synchronous=off writes its header
    as "count the records from the file size", so it is complete at once).
    """
    workdir.mkdir()
    forged = shutil.copy(db, workdir / "forged.db")
    with closing(sqlite3.connect(forged, isolation_level=None)) as conn:
        conn.execute(forge_sql)
        conn.execute("pragma synchronous=off")
        conn.execute("begin")
        conn.execute("update responses set text = ''")
        journal = (workdir / "forged.db-journal").read_bytes()
        conn.execute("rollback")
    return journal


def _response_texts(db) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {text for (text,) in conn.execute("select distinct text from responses")}


# ---- keys ----------------------------------------------------------------------


def test_keygen_writes_private_key_0600_and_public_key(keys):
    mode = stat.S_IMODE(keys["private"].stat().st_mode)
    assert mode == 0o600
    assert keys["private"].read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert keys["public"].read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_never_overwrites(keys):
    with pytest.raises(AuditError, match="already exists"):
        signing.keygen(keys["private"])


def test_sign_key_that_is_not_a_key_is_a_one_line_error(tmp_path):
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(AuditError, match="not an unencrypted PEM private key"):
        render_report(tmp_path / "audit.db", tmp_path / "out", sign_key=tmp_path / "junk")


# ---- a fresh report verifies -------------------------------------------------------


def test_fresh_signed_report_verifies(signed_report, keys):
    out = signing.verify_report(signed_report["dir"], public_key=keys["public"])
    assert f"ok: signature by key {_key_id(keys['public'])} (the key in {keys['public']})" in out
    assert "ok: 6 files hash as recorded" in out and "the folder holds nothing else" in out
    assert "transcripts match Merkle root" in out
    assert "claims match the database's results" in out


def test_signed_report_says_so_on_page_one(signed_report):
    html = (signed_report["dir"] / "report.html").read_text(encoding="utf-8")
    first = html[:html.index('id="claims"')]
    assert "Signed report" in first and "Unsigned report" not in first
    keyid = json.loads((signed_report["dir"] / signing.ENVELOPE).read_text())["signatures"][0]["keyid"]
    assert keyid in first


def test_envelope_is_dsse_over_the_manifest(signed_report, keys):
    envelope = json.loads((signed_report["dir"] / signing.ENVELOPE).read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    assert payload == (signed_report["dir"] / signing.MANIFEST).read_bytes()
    public = signing.load_public_key(keys["public"])
    assert envelope["signatures"][0]["keyid"] == signing.key_id(public)
    public.verify(base64.b64decode(envelope["signatures"][0]["sig"]),
                  b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload))


def test_verify_requires_a_key_from_outside_the_folder(signed_report):
    with pytest.raises(AuditError, match="say which key you trust: --public-key FILE .* or --key-id KEYID"):
        signing.verify_report(signed_report["dir"])
    result = CliRunner().invoke(cli, ["verify", str(signed_report["dir"])])
    assert result.exit_code == 1 and "--public-key" in result.output and "--key-id" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_verify_with_a_pinned_key_id_uses_the_shipped_key_and_names_it(signed_report, keys):
    keyid = _key_id(keys["public"])
    result = CliRunner().invoke(cli, ["verify", str(signed_report["dir"]), "--key-id", keyid.upper()])
    assert result.exit_code == 0, result.output
    assert f"ok: signature by key {keyid} (pinned with --key-id; signer.pub in the folder has that id)" in result.output


def test_the_report_summary_says_how_to_verify_with_its_key_id(signed_report, keys):
    keyid = _key_id(keys["public"])
    assert f"distill-audit verify {signed_report['dir']} --key-id {keyid}" in signed_report["summary"]


def test_a_pinned_key_id_and_a_given_public_key_must_agree(signed_report, keys):
    with pytest.raises(AuditError, match=rf"other.pub: key id \w+, not the pinned {_key_id(keys['public'])}"):
        signing.verify_report(signed_report["dir"], public_key=keys["other_public"],
                              pinned_key_id=_key_id(keys["public"]))
    out = signing.verify_report(signed_report["dir"], public_key=keys["public"],
                                pinned_key_id=_key_id(keys["public"]))
    assert "which has the pinned id" in out


@pytest.mark.parametrize("value", ["abc", "z" * 64, ""])
def test_a_malformed_key_id_is_a_one_line_error(signed_report, value):
    with pytest.raises(AuditError, match="not a key id \\(64 hex digits"):
        signing.verify_report(signed_report["dir"], pinned_key_id=value)


def test_verifying_never_changes_the_database_copy(signed_report, keys):
    before = (signed_report["dir"] / "audit.db").read_bytes()
    signing.verify_report(signed_report["dir"], public_key=keys["public"])
    assert (signed_report["dir"] / "audit.db").read_bytes() == before
    assert not (signed_report["dir"] / "audit.db-wal").exists()


def test_cli_verify_exit_codes(report, keys):
    ok = CliRunner().invoke(cli, ["verify", str(report), "--public-key", str(keys["public"])])
    assert ok.exit_code == 0, ok.output
    _flip_byte(report / "report.html")
    bad = CliRunner().invoke(cli, ["verify", str(report), "--public-key", str(keys["public"])])
    assert bad.exit_code == 1
    assert "error:" in bad.output and "report.html" in bad.output and "Traceback" not in bad.output


# ---- tampering -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.html", "report.pdf", "audit.db", "category-evidence.svg",
                                  "budget-curves.svg", "public-vs-private.svg"])
def test_a_changed_byte_in_any_artifact_is_caught(report, keys, name):
    _flip_byte(report / name, offset=len((report / name).read_bytes()) // 2)
    with pytest.raises(AuditError, match=rf"{name}: changed since signing"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_missing_file_is_caught(report, keys):
    (report / "report.pdf").unlink()
    with pytest.raises(AuditError, match="report.pdf: listed in the manifest but missing"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_changed_manifest_is_caught(report, keys):
    stmt = _statement(report)
    stmt["predicate"]["assurance_level"] = "reproduced"
    (report / signing.MANIFEST).write_bytes(signing.statement_bytes(stmt))
    with pytest.raises(AuditError, match="different from the signed statement"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_wrong_key_is_caught(report, keys):
    with pytest.raises(AuditError, match="wrong key"):
        signing.verify_report(report, public_key=keys["other_public"])


def test_a_resigned_report_with_a_swapped_shipped_key_never_verifies(report, keys):
    """The forger re-signs with their own key and ships it as signer.pub: self-consistent, and refused."""
    _resign(report, _statement(report), keys["other_private"])
    with pytest.raises(AuditError, match=f"signer.pub: key id {_key_id(keys['other_public'])}, not the pinned"):
        signing.verify_report(report, pinned_key_id=_key_id(keys["public"]))
    with pytest.raises(AuditError, match="wrong key"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_forged_signature_is_caught(report, keys):
    envelope = json.loads((report / signing.ENVELOPE).read_text())
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 0xFF
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    (report / signing.ENVELOPE).write_text(json.dumps(envelope) + "\n")
    with pytest.raises(AuditError, match="signature does not match"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_swapped_payload_is_caught(report, keys):
    envelope = json.loads((report / signing.ENVELOPE).read_text())
    stmt = _statement(report)
    stmt["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(signing.statement_bytes(stmt)).decode()
    (report / signing.ENVELOPE).write_text(json.dumps(envelope) + "\n")
    with pytest.raises(AuditError, match="signature does not match"):
        signing.verify_report(report, public_key=keys["public"])


@pytest.mark.parametrize("mangle, message", [
    (lambda text: "", "expected one JSON line, found 0"),
    (lambda text: text + "\n" + text, "expected one JSON line, found 2"),
    (lambda text: text[: len(text) // 2], "not JSON"),
    (lambda text: json.dumps({"payload": "x"}), "needs payloadType, payload and signatures"),
    (lambda text: json.dumps({**json.loads(text), "payloadType": "text/plain"}), "payloadType is 'text/plain'"),
    (lambda text: json.dumps({**json.loads(text), "payload": "***not base64***"}), "payload is not base64"),
    (lambda text: json.dumps({**json.loads(text), "signatures": []}), "needs payloadType, payload and signatures"),
])
def test_a_malformed_envelope_is_caught(report, keys, mangle, message):
    path = report / signing.ENVELOPE
    path.write_text(mangle(path.read_text().strip()) + "\n")
    with pytest.raises(AuditError, match="malformed envelope") as exc:
        signing.verify_report(report, public_key=keys["public"])
    assert message in str(exc.value)


def test_an_unexpected_claim_is_caught_even_when_validly_signed(report, keys):
    stmt = _statement(report)
    forged = dict(stmt["predicate"]["claims"][0])
    forged.update(adversary="oracle", value=0.0, interval={"low": 0.0, "high": 0.01, "confidence": 0.95,
                                                             "method": "wishful"})
    stmt["predicate"]["claims"].append(forged)
    _resign(report, stmt, keys["private"])
    with pytest.raises(AuditError, match=r"unexpected claim \('oracle'\)"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_changed_claim_number_is_caught_even_when_validly_signed(report, keys):
    stmt = _statement(report)
    headline = next(c for c in stmt["predicate"]["claims"] if c["adversary"] == "headline")
    headline["interval"]["high"] = 0.05
    _resign(report, stmt, keys["private"])
    with pytest.raises(AuditError, match="unexpected claim \\('headline'\\)"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_dropped_claim_is_caught(report, keys):
    stmt = _statement(report)
    stmt["predicate"]["claims"] = [c for c in stmt["predicate"]["claims"] if c["adversary"] != "headline"]
    _resign(report, stmt, keys["private"])
    with pytest.raises(AuditError, match="claims of .* are missing from the statement"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_rewritten_transcript_is_caught_by_its_content_hash(report, keys):
    """The signer edits a response in the database copy and re-signs the new file digest."""
    db = report / "audit.db"
    with sqlite3.connect(db) as conn:
        conn.execute("update responses set text = 'I am definitely not the teacher' where rowid = 1")
    stmt = _statement(report)
    for subject in stmt["subject"]:
        if subject["name"] == "audit.db":
            subject["digest"]["sha256"] = signing.file_sha256(db)
    _resign(report, stmt, keys["private"])
    with pytest.raises(AuditError, match="transcripts no longer match their content hash"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_rehashed_transcript_is_caught_by_the_merkle_root(report, keys):
    """Even a response rewritten together with its content hash changes the signed Merkle root."""
    db = report / "audit.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute("select r.query_id, r.model_id, r.probe_id, r.sample, q.purpose, q.params_json "
                           "from responses r join queries q on q.id = r.query_id limit 1").fetchone()
        qid, mid, pid, sample, purpose, params = row
        text = "a quietly rewritten answer"
        new_hash = content_hash(transcript_record(mid, pid, sample, purpose, json.loads(params), text, None))
        conn.execute("update responses set text = ?, content_hash = ? where query_id = ?", [text, new_hash, qid])
    stmt = _statement(report)
    for subject in stmt["subject"]:
        if subject["name"] == "audit.db":
            subject["digest"]["sha256"] = signing.file_sha256(db)
    _resign(report, stmt, keys["private"])
    with pytest.raises(AuditError, match="Merkle root .* differs from the signed"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_subject_outside_the_report_folder_is_refused(report, keys):
    stmt = _statement(report)
    stmt["subject"].append({"name": "../../etc/passwd", "digest": {"sha256": "0" * 64}})
    _resign(report, stmt, keys["private"])
    with pytest.raises(AuditError, match="malformed subject"):
        signing.verify_report(report, public_key=keys["public"])


def test_an_unsigned_report_does_not_verify(tmp_path):
    build_report_db(tmp_path / "audit.db", n_probes=16)
    render_report(tmp_path / "audit.db", tmp_path / "out", pdf=False)
    with pytest.raises(AuditError, match="the report is unsigned"):
        signing.verify_report(tmp_path / "out")


@pytest.mark.parametrize("name", ["audit.db-journal", "audit.db-wal", "audit.db-shm", "notes.txt"])
def test_verify_fails_on_a_file_the_manifest_does_not_list(report, keys, name):
    (report / name).write_bytes(b"added later")
    with pytest.raises(AuditError, match=rf"{name}: not listed in the signed manifest"):
        signing.verify_report(report, public_key=keys["public"])


def test_verify_fails_on_a_folder_inside_the_report(report, keys):
    (report / "extra").mkdir()
    with pytest.raises(AuditError, match="extra: not listed in the signed manifest"):
        signing.verify_report(report, public_key=keys["public"])


def test_verify_fails_on_a_journal_beside_the_database_and_never_rolls_it_in(report, keys, tmp_path):
    journal = _crafted_journal(report / "audit.db", tmp_path / "forgery", "update responses set text = 'forged'")
    victim = tmp_path / "victim"
    victim.mkdir()
    shutil.copy(report / "audit.db", victim / "audit.db")
    (victim / "audit.db-journal").write_bytes(journal)
    assert _response_texts(victim / "audit.db") == {"forged"}  # the attack is real: a plain open rolls it in
    (report / "audit.db-journal").write_bytes(journal)
    before = signing.file_sha256(report / "audit.db")
    with pytest.raises(AuditError, match=r"audit.db-journal: not listed in the signed manifest \(a journal"):
        signing.verify_report(report, public_key=keys["public"])
    with Store.open_readonly(report / "audit.db") as copy:  # and the copy is read immutable, journal or not
        assert copy.db.execute("select count(*) from responses where text = 'forged'").fetchone()[0] == 0
    assert signing.file_sha256(report / "audit.db") == before
    assert (report / "audit.db-journal").read_bytes() == journal


@pytest.mark.parametrize("name", ["report.html", "audit.db", "manifest.json", "report.intoto.jsonl", "signer.pub"])
def test_verify_fails_on_a_symlinked_listed_file(report, keys, tmp_path, name):
    """Even a link to a byte-identical copy outside the folder: what verify read is not what the folder holds."""
    outside = shutil.copy(report / name, tmp_path / f"outside-{name}")
    (report / name).unlink()
    (report / name).symlink_to(outside)
    with pytest.raises(AuditError, match=rf"{name}: a symbolic link"):
        signing.verify_report(report, pinned_key_id=_key_id(keys["public"]))


def test_verify_fails_on_an_unlisted_link_out_of_the_folder(report, keys, tmp_path):
    (report / "audit.db-wal").symlink_to(tmp_path)
    with pytest.raises(AuditError, match="audit.db-wal: a symbolic link"):
        signing.verify_report(report, public_key=keys["public"])


def test_a_missing_report_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(AuditError, match="no such report folder"):
        signing.verify_report(tmp_path / "nope")


def test_a_changed_probe_coverage_is_caught_even_when_validly_signed(report, keys):
    """A signer who claims every model answered more probes than the database shows is caught."""
    stmt = _statement(report)
    headline = next(c for c in stmt["predicate"]["claims"] if c["adversary"] == "headline")
    assert headline["coverage"]["probes_common"] == headline["coverage"]["probes_selected"]
    headline["coverage"]["probes_selected"] += 10
    _resign(report, stmt, keys["private"])
    with pytest.raises(AuditError, match="unexpected claim \\('headline'\\)"):
        signing.verify_report(report, public_key=keys["public"])
