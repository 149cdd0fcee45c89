"""The adapter folder's lifecycle: refuse to clobber, checkpoint and resume, publish atomically, read back.

A folder is a finished adapter only with its ``training_complete.json``
marker, written last inside a sibling temporary folder that is then renamed
into place; half-trained state lives in ``.checkpoint``, written by rename
too. Everything that decides what an adapter folder holds is here, so the
rules for "finished", "ours" and "resumable" are stated once.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from audit.errors import AuditError

COMPLETE_MARKER = "training_complete.json"
TRAINING_LOG = "training_log.csv"
CHECKPOINT_DIR = ".checkpoint"
CHECKPOINT_FILE = "state.pt"
LOG_FIELDS = ("step", "epoch", "loss", "learning_rate", "tokens", "tokens_per_s", "elapsed_s")


def read_marker(adapter_dir: Path) -> dict | None:
    """The marker of the finished adapter in ADAPTER_DIR (its settings, training probes and cost); None without."""
    marker = Path(adapter_dir) / COMPLETE_MARKER
    return json.loads(marker.read_text()) if marker.exists() else None


def finished_adapter(out: Path, config: dict) -> dict | None:
    """The marker of the finished adapter in OUT when it was trained by exactly this plan's config; None when OUT
    holds no finished adapter; an error when it holds another run's (other settings, data or fitted exposure)."""
    recorded = read_marker(out)
    if recorded is None:
        return None
    if recorded.get("config") != json.loads(json.dumps(config)):
        raise AuditError(f"{out}: holds a finished adapter of other settings or data than this run's; move it "
                         "away or choose another folder")
    return recorded


def training_probe_ids(adapter_dir: Path) -> list[str]:
    """The probes a finished adapter was trained on (from its marker), so an audit can keep away from them."""
    return list((read_marker(adapter_dir) or {}).get("training_probes", []))


def _is_ours(path: Path) -> bool:
    return any((path / name).exists() for name in (COMPLETE_MARKER, CHECKPOINT_DIR, "adapter_config.json"))


def check_adapter_dir(out: Path, overwrite: bool) -> None:
    """Fail before any work when OUT would be clobbered; a bare checkpoint is resumed, not clobbered."""
    if not out.exists():
        return
    if not out.is_dir():
        raise AuditError(f"{out}: exists and is not a directory; choose another --out")
    if not any(out.iterdir()):
        return
    if not _is_ours(out):
        raise AuditError(f"{out}: exists and is not an adapter directory; refusing to touch it, choose another --out")
    if overwrite:
        return
    if (out / COMPLETE_MARKER).exists():
        raise AuditError(f"{out}: already holds a trained adapter; pass --overwrite to replace it")
    if not (out / CHECKPOINT_DIR).exists():
        raise AuditError(f"{out}: holds an adapter without {COMPLETE_MARKER}; pass --overwrite to replace it")


def remove_adapter_dir(out: Path) -> None:
    """Delete OUT for --overwrite, only when it is an adapter folder (never a folder of someone else's files)."""
    if out.exists() and _is_ours(out):
        shutil.rmtree(out)


def load_checkpoint(out: Path, config: dict) -> dict | None:
    """The saved training state when it belongs to this very run, else None (or an error if it is another run's)."""
    path = out / CHECKPOINT_DIR / CHECKPOINT_FILE
    if not path.exists():
        return None
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("config") != config:
        raise AuditError(f"{out}: holds a checkpoint of a different distillation (other settings or data); "
                         "pass --overwrite to start over")
    return state


def save_checkpoint(out: Path, state: dict) -> None:
    """Write the training state to a temporary file and rename it: a crash never leaves half a checkpoint."""
    import torch

    folder = out / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, folder / CHECKPOINT_FILE)


def publish_adapter(model, out: Path, marker: dict, log_rows: list[dict]) -> None:
    """Save the adapter beside OUT, then swap it in; OUT's checkpoint goes with the old folder."""
    partial = out.parent / f".{out.name}.partial"
    old = out.parent / f".{out.name}.old"
    for leftover in (partial, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    model.save_pretrained(partial)
    (partial / "README.md").write_text(_adapter_card(marker))
    with open(partial / TRAINING_LOG, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(log_rows)
    (partial / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    if out.exists():
        os.rename(out, old)
    os.rename(partial, out)
    shutil.rmtree(old, ignore_errors=True)


def _adapter_card(marker: dict) -> str:
    """A short README so the folder says what it is and how it was made."""
    return (f"# LoRA adapter distilled by distill-audit {marker['tool_version']}\n\n"
            f"- student (base model): `{marker['student']}`\n- teacher: `{marker['teacher']}`\n"
            f"- objective {marker['config']['objective']} on the exposure `{marker['config']['exposure']['policy']}`\n"
            f"- {marker['examples']} teacher responses to training probes, {marker['steps']} steps, "
            f"loss {marker['first_loss']:.3f} -> {marker['final_loss']:.3f}, {marker['wall_s']:.0f} s on "
            f"{marker['device']}\n- use it as the model spec `peft:{marker['student']}+<this folder>`\n\n"
            f"Command:\n\n    {marker['command'] or '(called from Python)'}\n\n"
            f"Per-step loss and throughput: `{TRAINING_LOG}`; settings and the training probes' ids: "
            f"`{COMPLETE_MARKER}`.\n")
