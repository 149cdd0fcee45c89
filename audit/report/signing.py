"""Signing and verifying a report: an in-toto Statement v1 in a DSSE envelope, signed with Ed25519.

``manifest.json`` is the statement: every artifact of the report (HTML,
PDF, figures, the copy of the audit database) with its sha256, and a
predicate stating each claim as an evaluation result, with the tool's
version and digest, the suite hash and a Merkle root over the transcripts.
``report.intoto.jsonl`` is the same bytes as a DSSE envelope: signed over
the DSSE pre-authentication encoding (PAE), so the signature covers the
payload type as well as the payload.

``verify_report`` trusts nothing in the folder, its shipped key least of
all: the signature is checked against a key the user names, the folder must
hold exactly the signed files (plain files, no links, nothing beside the
database that SQLite would read), then it re-hashes every file, recomputes
the transcripts' Merkle root and the claims from the database copy itself
(opened immutable, so no journal is ever rolled into it), and names the
first thing that does not match.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from audit import __version__
from audit import verdict as V
from audit.errors import AuditError
from audit.store import Store

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://distill-audit.dev/attestation/evaluation-result/v1"
MANIFEST = "manifest.json"
ENVELOPE = "report.intoto.jsonl"
PUBLIC_KEY = "signer.pub"
DATABASE = "audit.db"
ASSURANCE = "self-attested"


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------


def keygen(out_base: str | os.PathLike) -> str:
    """Write an Ed25519 private key (PEM, mode 0600) at OUT and its public key at OUT.pub; never overwrite."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(out_base)
    public_path = Path(f"{private_path}.pub")
    for path in (private_path, public_path):
        if path.exists():
            raise AuditError(f"{path}: already exists; keygen never overwrites a key")
    if not private_path.parent.is_dir():
        raise AuditError(f"{private_path}: folder {private_path.parent} does not exist")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise AuditError(f"{private_path}: cannot write the key pair ({exc.strerror})") from exc
    return (f"wrote {private_path} (private key, mode 0600; keep it secret) and {public_path} "
            f"(public key id {key_id(key.public_key())})")


def load_private_key(path: str | os.PathLike):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path}: not an Ed25519 key (make one with `distill-audit keygen`)")
    return key


def load_public_key(path: str | os.PathLike):
    return _public_key_from_pem(_read_key_file(path), path)


def _public_key_from_pem(data: bytes, where: str | os.PathLike):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuditError(f"{where}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{where}: not an Ed25519 public key")
    return key


def _read_key_file(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the key ({exc.strerror})") from exc


def key_id(public_key) -> str:
    """sha256 of the raw 32-byte Ed25519 public key, hex: the DSSE keyid."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_pem(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --------------------------------------------------------------------------
# Digests
# --------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def tool_digest() -> str:
    """sha256 over the installed package's source and templates: which exact code made the report."""
    root = Path(__file__).resolve().parent.parent
    entries = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in names:
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(folder) / name
            entries.append(f"{path.relative_to(root).as_posix()}\0{file_sha256(path)}\n")
    return hashlib.sha256("".join(sorted(entries)).encode()).hexdigest()


# --------------------------------------------------------------------------
# The statement
# --------------------------------------------------------------------------


def evaluation_predicate(store: Store, *, tool_sha256: str) -> dict[str, Any]:
    """The claims of the audit held in ``store``, in the shape of an evaluation-result attestation."""
    audit = store.require_audit()
    count, root = store.transcripts_root()
    return {
        "evaluation": "(epsilon, q, t, A)-behavioral indistinguishability of a suspect model from a claimed teacher",
        "tool": {"name": "distill-audit", "version": __version__, "digest": {"sha256": tool_sha256}},
        "audit": {"id": audit["id"], "created_at": audit["created_at"], "collected_with": audit["tool_version"]},
        "suite": {"name": audit["suite_name"], "version": audit["suite_version"],
                  "digest": {"sha256": audit["suite_hash"]}, "private_seed_sha256": audit["private_seed_hash"]},
        "models": [{"name": m["name"], "role": m["role"], "spec": m["spec"], "fingerprint": m["fingerprint"]}
                   for m in store.models()],
        "database": DATABASE,
        "transcripts": {"count": count, "merkle_root": {"sha256": root},
                        "leaves": "content_hash of every response and judgement, ordered by their key"},
        "claims": signed_claims(store),
        "assurance_level": ASSURANCE,
        "rendered_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def signed_claims(store: Store) -> list[dict[str, Any]]:
    """Every whole-suite claim of the audit, as predicate entries; verification recomputes exactly this."""
    audit = store.require_audit()
    threshold = json.loads(audit.get("config_json") or "{}").get("epsilon_threshold")
    found = V.findings(store.results(), threshold=threshold)
    return [c.predicate(threshold) for c in found.signed_claims]


def statement(report_dir: Path, names: list[str], predicate: dict[str, Any]) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": file_sha256(report_dir / name)}} for name in sorted(names)],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def statement_bytes(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is computed over."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign_payload(payload: bytes, private_key) -> dict[str, Any]:
    """A DSSE envelope over ``payload`` with one Ed25519 signature."""
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key_id(private_key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}],
    }


def write_signed(report_dir: Path, payload: bytes, private_key) -> None:
    """Write the envelope (one JSON line) and the public key next to the report."""
    envelope = sign_payload(payload, private_key)
    (report_dir / ENVELOPE).write_text(json.dumps(envelope, separators=(",", ":")) + "\n", encoding="utf-8")
    (report_dir / PUBLIC_KEY).write_bytes(public_key_pem(private_key.public_key()))


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------


def verify_report(report_dir: str | os.PathLike, *, public_key: str | os.PathLike | None = None,
                  pinned_key_id: str | None = None) -> str:
    """Check the signature, every file's hash, the transcripts' Merkle root and the claims; raise on the first failure.

    The key must come from outside the folder: ``public_key`` (a file the
    user holds) or ``pinned_key_id`` (the id the signer gave them). Anyone who
    re-signs a forgery ships their own ``signer.pub`` with it, so the folder's
    key is used only when its id is the pinned one. Nothing in the folder is
    followed through a symbolic link, and any file the signed manifest does
    not list fails: a journal beside the database would change what SQLite
    reads from it.
    """
    report_dir = Path(report_dir)
    if not report_dir.is_dir():
        raise AuditError(f"{report_dir}: no such report folder")
    if not os.path.lexists(report_dir / ENVELOPE):
        raise AuditError(f"{report_dir}: the report is unsigned (no {ENVELOPE}); nothing can be verified")
    key, key_source = _trusted_key(report_dir, public_key, pinned_key_id)
    envelope = _read_envelope(report_dir / ENVELOPE)
    payload = _check_signature(envelope, key, key_source)
    stmt = _parse_statement(payload, report_dir)
    manifest = report_dir / MANIFEST
    if _read_plain(manifest) != payload:
        raise AuditError(f"{manifest}: missing or different from the signed statement in {ENVELOPE}")
    names = _subject_names(stmt)
    _check_listing(report_dir, names)
    _check_subjects(stmt, report_dir)
    count, root = _check_database(stmt, report_dir)
    leakage = ["ok: the leakage curves, CMI estimates and answer match the database"] \
        if "leakage" in stmt["predicate"] else []
    return "\n".join([
        f"ok: signature by key {key_id(key)} ({key_source})",
        f"ok: {len(names)} files hash as recorded ({', '.join(names)}); the folder holds nothing else",
        f"ok: {count} transcripts match Merkle root {root}",
        f"ok: {len(stmt['predicate']['claims'])} claims match the database's results",
        *leakage,
        f"signed by distill-audit {stmt['predicate']['tool']['version']}; assurance level "
        f"{stmt['predicate']['assurance_level']}",
    ])


def _trusted_key(report_dir: Path, public_key: str | os.PathLike | None, pinned_key_id: str | None):
    """(key, where it came from): the user's key file, or the folder's key only if it has the id the user pinned."""
    if public_key is None and pinned_key_id is None:
        raise AuditError(f"{report_dir}: say which key you trust: --public-key FILE (the signer's public key) "
                         "or --key-id KEYID (its id, as the signer gave it to you); a key inside the folder "
                         "proves nothing")
    pinned = _normal_key_id(pinned_key_id) if pinned_key_id is not None else None
    if public_key is not None:
        key_path, key = Path(public_key), load_public_key(public_key)
        source = f"the key in {key_path}" + (", which has the pinned id" if pinned else "")
    else:
        key_path = report_dir / PUBLIC_KEY
        data = _read_plain(key_path)
        if data is None:
            raise AuditError(f"{key_path}: missing, so nothing has the pinned key id; pass --public-key FILE")
        key = _public_key_from_pem(data, key_path)
        source = f"pinned with --key-id; {PUBLIC_KEY} in the folder has that id"
    if pinned and key_id(key) != pinned:
        raise AuditError(f"{key_path}: key id {key_id(key)}, not the pinned {pinned}: not the key you trust")
    return key, source


def _normal_key_id(value: str) -> str:
    """A key id as the user may paste it (any case, an optional sha256: prefix) in the form keys are compared."""
    normal = value.strip().lower().removeprefix("sha256:")
    if len(normal) != 64 or any(c not in "0123456789abcdef" for c in normal):
        raise AuditError(f"--key-id {value!r}: not a key id (64 hex digits, as `distill-audit keygen` and "
                         "`distill-audit report` print it)")
    return normal


def _open_plain(path: Path):
    """A report file opened for reading without following a symbolic link, or None if it is missing.

    O_NOFOLLOW makes the kernel refuse a link at open time (no window between
    a check and the read); O_NONBLOCK keeps a FIFO from hanging the open.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():
            raise AuditError(f"{path}: a symbolic link; a report folder holds plain files only") from exc
        raise AuditError(f"{path}: cannot read ({exc.strerror})") from exc
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        fh.close()
        raise AuditError(f"{path}: not a plain file; a report folder holds plain files only")
    return fh


def _read_plain(path: Path) -> bytes | None:
    fh = _open_plain(path)
    if fh is None:
        return None
    with fh:
        return fh.read()


def _check_listing(report_dir: Path, names: list[str]) -> None:
    """Everything in the folder is a plain file the manifest lists (or the manifest, envelope, shipped key)."""
    allowed = set(names) | {MANIFEST, ENVELOPE, PUBLIC_KEY}
    try:
        entries = sorted(os.scandir(report_dir), key=lambda entry: entry.name)
    except OSError as exc:
        raise AuditError(f"{report_dir}: cannot list the report folder ({exc.strerror})") from exc
    for entry in entries:
        path = report_dir / entry.name
        if entry.is_symlink():
            raise AuditError(f"{path}: a symbolic link; a report folder holds plain files only")
        if entry.name not in allowed:
            why = (f"a journal or WAL beside {DATABASE} would change what SQLite reads from it; do not open "
                   "the database while it is there" if entry.name.startswith(DATABASE)
                   else "the folder is not as signed")
            raise AuditError(f"{path}: not listed in the signed manifest ({why})")
        if not entry.is_file(follow_symlinks=False):
            raise AuditError(f"{path}: not a plain file; a report folder holds plain files only")


def _read_envelope(path: Path) -> dict[str, Any]:
    text = (_read_plain(path) or b"").decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise AuditError(f"{path}: malformed envelope (expected one JSON line, found {len(lines)})")
    try:
        envelope = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise AuditError(f"{path}: malformed envelope (not JSON: {exc.msg})") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("signatures"), list) \
            or not isinstance(envelope.get("payload"), str) or not envelope["signatures"]:
        raise AuditError(f"{path}: malformed envelope (needs payloadType, payload and signatures)")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise AuditError(f"{path}: malformed envelope (payloadType is {envelope.get('payloadType')!r}, "
                         f"not {PAYLOAD_TYPE!r})")
    return envelope


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuditError(f"{ENVELOPE}: malformed envelope ({what} is not base64)") from exc


def _check_signature(envelope: dict[str, Any], key, key_source: str) -> bytes:
    from cryptography.exceptions import InvalidSignature

    payload = _b64(envelope["payload"], "payload")
    expected = key_id(key)
    signatures = [s for s in envelope["signatures"] if isinstance(s, dict)]
    mine = [s for s in signatures if s.get("keyid") == expected]
    if not mine:
        found = ", ".join(str(s.get("keyid")) for s in signatures) or "none"
        raise AuditError(f"{ENVELOPE}: signed by key {found}, not by {key_source} (key id {expected}): wrong key")
    for sig in mine:
        try:
            key.verify(_b64(sig.get("sig"), "signature"), pae(envelope["payloadType"], payload))
            return payload
        except InvalidSignature:
            continue
    raise AuditError(f"{ENVELOPE}: the signature does not match the statement and {key_source}")


def _parse_statement(payload: bytes, report_dir: Path) -> dict[str, Any]:
    try:
        stmt = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"{ENVELOPE}: the signed payload is not a JSON statement") from exc
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE or stmt.get("predicateType") != PREDICATE_TYPE:
        raise AuditError(f"{ENVELOPE}: the signed payload is not a distill-audit in-toto statement")
    if not isinstance(stmt.get("subject"), list) or not isinstance(stmt.get("predicate"), dict) \
            or not isinstance(stmt["predicate"].get("claims"), list):
        raise AuditError(f"{ENVELOPE}: the statement lacks subjects or claims")
    return stmt


def _subject_names(stmt: dict[str, Any]) -> list[str]:
    """The file names the statement signs: plain names inside the folder, the database among them."""
    names = []
    for subject in stmt["subject"]:
        name = subject.get("name") if isinstance(subject, dict) else None
        digest = (subject.get("digest") or {}).get("sha256") if isinstance(subject, dict) else None
        if not isinstance(name, str) or not _is_plain_name(name) or not isinstance(digest, str):
            raise AuditError(f"{ENVELOPE}: malformed subject {subject!r}")
        names.append(name)
    if DATABASE not in names:
        raise AuditError(f"{ENVELOPE}: the statement does not list the audit database {DATABASE}")
    return names


def _check_subjects(stmt: dict[str, Any], report_dir: Path) -> None:
    for subject in stmt["subject"]:
        path, digest = report_dir / subject["name"], subject["digest"]["sha256"]
        fh = _open_plain(path)
        if fh is None:
            raise AuditError(f"{path}: listed in the manifest but missing")
        with fh:
            actual = hashlib.file_digest(fh, "sha256").hexdigest()
        if actual != digest:
            raise AuditError(f"{path}: changed since signing (sha256 {actual}, signed {digest})")


def _is_plain_name(name: str) -> bool:
    """A file directly inside the report folder: no absolute path, no '..', no subfolder."""
    pure = PurePosixPath(name)
    return len(pure.parts) == 1 and name not in (".", "..") and "\\" not in name and "\x00" not in name


def _check_database(stmt: dict[str, Any], report_dir: Path) -> tuple[int, str]:
    """Recompute the Merkle root and the claims from the database copy; both must equal the signed ones."""
    predicate = stmt["predicate"]
    db_path = report_dir / DATABASE
    store = Store.open_readonly(db_path)
    try:
        audit_id = (predicate.get("audit") or {}).get("id")
        audit = store.require_audit()
        if audit["id"] != audit_id:
            raise AuditError(f"{db_path}: holds audit {audit['id']}, the statement is about {audit_id}")
        tampered = store.verify_transcripts()
        if tampered:
            raise AuditError(f"{db_path}: {len(tampered)} transcripts no longer match their content hash "
                             f"(first: query {tampered[0]})")
        count, root = store.transcripts_root()
        signed_root = ((predicate.get("transcripts") or {}).get("merkle_root") or {}).get("sha256")
        if root != signed_root:
            raise AuditError(f"{db_path}: transcripts' Merkle root {root} differs from the signed {signed_root}")
        expected = signed_claims(store)
        if "leakage" in predicate:
            _compare_leakage(predicate["leakage"], store, db_path)
    finally:
        store.close()
    _compare_claims(predicate["claims"], expected, db_path)
    return count, root


def _compare_leakage(signed: Any, store: Store, db_path: Path) -> None:
    """A leakage report's curves, CMI estimates and answer (``audit.report.leakage``), recomputed from the copy."""
    from audit.report.leakage import leakage_section

    try:
        expected = json.loads(json.dumps(leakage_section(store)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a signed database is still hostile data
        raise AuditError(f"{db_path}: its leakage record is malformed ({type(exc).__name__}), so the signed "
                         "leakage section cannot be checked") from exc
    if signed != expected:
        part = next((k for k in expected if not isinstance(signed, dict) or signed.get(k) != expected[k]), "leakage")
        raise AuditError(f"{ENVELOPE}: the signed leakage {part} differs from what {db_path} holds")


def _compare_claims(signed: list[Any], expected: list[dict[str, Any]], db_path: Path) -> None:
    expected_keys = {V.predicate_key(c): c for c in expected}
    signed_keys = set()
    for claim in signed:
        if not isinstance(claim, dict) or V.predicate_key(claim) not in expected_keys:
            what = claim.get("adversary") if isinstance(claim, dict) else claim
            raise AuditError(f"{ENVELOPE}: unexpected claim ({what!r}) that {db_path}'s results do not support")
        signed_keys.add(V.predicate_key(claim))
    missing = [c for k, c in expected_keys.items() if k not in signed_keys]
    if missing:
        c = missing[0]
        raise AuditError(f"{ENVELOPE}: {len(missing)} claims of {db_path} are missing from the statement "
                         f"(first: {c['adversary']} {c['comparison']} {c['split']})")
