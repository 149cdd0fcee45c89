"""The whole audit in one command: collect -> analyze -> report (signed), each stage skipped when already done.

`distill-audit run` is the three stage commands in a row, over one database,
so a run killed anywhere is finished by running it again: collection
resumes where it stopped, and a stage whose output is already current for
its inputs is skipped. What "current" means is read from the database
alone, never from a side file:

- collect: the audit is marked ``collected`` with the same settings that
  decide what is asked (models, suite, queries, samples, decoding, seed);
- analyze: results exist, were written after the last response was recorded,
  by an analysis that recorded the analyze settings this run asks for
  (judge, --no-judge, --judge-probes, confidence: compared as data) and
  skipped no adversary for want of a model this run names;
- report: the report folder holds every file the database lists as
  rendered, with the same sha256, rendered after the analysis, signed (and
  with a PDF) as asked.

Settings come from flags or an ``audit.toml`` whose keys are the flags'
names (``db``, ``out``, ``teacher``, ``suspect``, ``controls``, ``judge``,
``sign_key``, ``queries``, ...); a flag given on the command line wins over
the file. Relative paths in the file are read like the same flags: from the
working directory.

`distill-audit demo` is `run` on the example config that ships inside the
package, with the demo's distilled adapter as the suspect.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from audit.errors import AuditError
from audit.settings import BY_NAME, COLLECT_FIELDS, CONFIG_KEYS, RUN_KEYS, analysis_settings, first_asked_difference

STAGES = ("collect", "analyze", "report")  # each prints "[n/3] stage" and shows its own progress bars


@dataclass(frozen=True)
class RunOptions:
    """`distill-audit run`: the collection options plus what analysis and the report need."""

    collect: Any  # audit.collect.CollectOptions (imported lazily: it pulls in the model interface)
    out_dir: Path
    judge: str | None = None
    use_judge: bool = True
    judge_probes: int | None = None
    confidence: float = BY_NAME["confidence"].default
    sign_key: Path | None = None
    pdf: bool = True

    def analysis_settings(self) -> dict:
        """The analyze settings this run asks for, as an analysis records them."""
        return analysis_settings(judge=self.judge, use_judge=self.use_judge, judge_probes=self.judge_probes,
                                 confidence=self.confidence)


def load_config(path: str | Path) -> dict[str, Any]:
    """An ``audit.toml`` as `run` parameter names and values; one-line errors for bad files and unknown keys."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the config ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AuditError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise AuditError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(CONFIG_KEYS))}")
    controls = data.get("controls", [])
    if not isinstance(controls, list) or not all(isinstance(c, str) for c in controls):
        raise AuditError(f"{path}: controls must be a list of model specs, e.g. controls = [\"gemma3-270m\"]")
    return {CONFIG_KEYS[key]: value for key, value in data.items()}


def run_options(**params: Any) -> RunOptions:
    """`run`'s parameters (by the flags' names, as from Click or a config) as options for the stages."""
    from audit.collect import CollectOptions

    run = {key: params.get(key, BY_NAME[key].default) for key in RUN_KEYS}
    if run["out_dir"] is None:
        raise AuditError("no report folder: pass --out DIR (or set out = \"DIR\" in the config)")
    collect = {key: params[key] for key in COLLECT_FIELDS if key in params}
    if "db_path" in collect:
        collect["db_path"] = Path(collect["db_path"])
    collect["controls"] = tuple(collect.get("controls", ()))
    try:
        collect_options = CollectOptions(**collect)
    except TypeError as exc:  # a required setting (teacher, suspect, db) is missing from the config
        raise AuditError(f"incomplete settings: {exc}") from exc
    sign_key = run["sign_key"]
    return RunOptions(collect=collect_options, out_dir=Path(run["out_dir"]), judge=run["judge"],
                      use_judge=not run["no_judge"], judge_probes=run["judge_probes"],
                      confidence=run["confidence"], sign_key=Path(sign_key) if sign_key else None,
                      pdf=not run["no_pdf"])


def run_pipeline(options: RunOptions) -> str:
    """Run the stages that are not yet current, in order; returns one line per stage and where the report is."""
    from audit.report import check_out_dir

    check_out_dir(options.collect.db_path, options.out_dir)
    check_training_probes(options.collect)
    lines = [_stage(1, "collect", _collect, options)]
    left = unasked(options.collect)
    if left:
        lines.append(f"stopped: {left} queries are not asked yet; run the same command again to resume")
        return "\n".join(lines)
    lines += [_stage(2, "analyze", _analyze, options), _stage(3, "report", _report, options),
              f"open: {options.out_dir / 'report.html'}"]
    return "\n".join(lines)


def _stage(number: int, name: str, run, options: RunOptions) -> str:
    from audit.progress import console

    if not options.collect.quiet:
        console.print(f"[{number}/{len(STAGES)}] {name}")
    return f"{name}: {run(options)}"


def check_training_probes(collect_options) -> None:
    """Refuse to evaluate a distilled adapter on the probes it was trained on (named in its training marker).

    A sequential audit's order leaves them out of its pool instead (`audit.collect_sequential`).
    """
    if collect_options.sequential:
        return
    from audit.collect import adapter_training_probes, choose_probes

    trained = adapter_training_probes(collect_options)
    if not trained:
        return
    _, probes, _ = choose_probes(collect_options)
    clash = [p.id for p in probes if p.id in trained]
    if clash:
        raise AuditError(f"{len(clash)} of the {len(probes)} evaluation probes (first {clash[0]}) are training "
                         f"probes of {trained[clash[0]]}; an audit never evaluates on them: choose another "
                         "--suite, --seed or --probes")


# ---------------------------------------------------------------------------
# The stages: each returns a one-line summary, or says why it was skipped
# ---------------------------------------------------------------------------


def _collect(options: RunOptions) -> str:
    from audit.collect import run_collect

    if not options.collect.new_run and collection_complete(options.collect):
        return "already complete for these settings (skipped)"
    lines = run_collect(options.collect).splitlines()
    started_over = [line for line in lines if line.startswith("started over:")]  # where --new-run put the old audit
    return "; ".join(started_over + lines[-1:])


def _analyze(options: RunOptions) -> str:
    from audit.analyze import run_analysis

    if analysis_current(options):
        return "results are current (skipped)"
    collect = options.collect  # the specs this run's user gave: the only ones analysis may load
    return run_analysis(collect.db_path, teacher_spec=collect.teacher, judge_spec=options.judge,
                        named_specs=(collect.suspect, *collect.controls), use_judge=options.use_judge,
                        judge_probes=options.judge_probes,
                        confidence=options.confidence, seed=collect.seed, quiet=collect.quiet).splitlines()[0]


def _report(options: RunOptions) -> str:
    from audit.report import render_report

    if _report_current(options):
        return f"{options.out_dir} is current (skipped)"
    return render_report(options.collect.db_path, options.out_dir, sign_key=options.sign_key,
                         pdf=options.pdf).splitlines()[0]


# ---------------------------------------------------------------------------
# Is a stage's output current? (read from the database alone)
# ---------------------------------------------------------------------------


def _open_audit(db_path: Path):
    """(store, audit) of an existing database, or (None, None)."""
    from audit.store import Store

    if not db_path.exists():
        return None, None
    store = Store.open(db_path, create=False)
    return store, store.audit()


def unasked(collect_options) -> int:
    """Queries of the audit not asked yet (a collection stopped by --max-seconds): analysis waits for them.

    A query that failed was asked: it is recorded as an error and retried by
    the next collection, but it does not hold the analysis back.
    """
    from collections import Counter

    from audit.collect import model_names
    from audit.store import Store

    with Store.open(collect_options.db_path, create=False) as store:
        audit = store.require_audit()
        expected = len(store.selected_probes("eval")) * collect_options.samples
        errors = Counter(row["model_id"] for row in store.query_errors())
        left = 0
        for name, _role, _spec in model_names(collect_options.teacher, collect_options.suspect,
                                               collect_options.controls):
            model = store.model(name)
            asked = len(store.completed_queries(model["id"])) + errors[model["id"]] if model else 0
            left += max(0, expected - asked)
    return left


def collection_complete(collect_options) -> bool:
    store, audit = _open_audit(collect_options.db_path)
    if store is None:
        return False
    with store:
        if audit is None or audit["status"] != "collected":
            return False
        return first_asked_difference(json.loads(audit["config_json"]), collect_options.recorded()) is None


def analysis_current(options: RunOptions) -> bool:
    """Results exist, newer than the last response, from an analysis run with the settings this run asks for
    (compared as recorded data; an analysis recorded before it recorded them is not current) and with every
    adversary that needs a named model run."""
    store, audit = _open_audit(options.collect.db_path)
    if store is None:
        return False
    with store:
        if audit is None:
            return False
        results = store.results()
        last_response = store.last_response_at()
        if not results or (last_response and last_response > store.results_written()[0]):
            return False
        analysis = next((c["details"] for c in store.costs() if c["subject"] == "analysis"), {})
        return analysis.get("settings") == options.analysis_settings() and not analysis.get("unnamed")


def _report_current(options: RunOptions) -> bool:
    from audit.report import PDF
    from audit.report.signing import ENVELOPE, MANIFEST, file_sha256

    out = options.out_dir
    store, audit = _open_audit(options.collect.db_path)
    if store is None:
        return False
    with store:
        if audit is None:
            return False
        artifacts = {a["path"]: a for a in store.artifacts()}
        last_result = store.results_written()[1]
    if MANIFEST not in artifacts or last_result is None or last_result > artifacts[MANIFEST]["created_at"]:
        return False
    for name, artifact in artifacts.items():
        path = out / name
        if not path.is_file() or file_sha256(path) != artifact["sha256"]:
            return False
    return (out / PDF).exists() == options.pdf and _signed_as_asked(out / ENVELOPE, options.sign_key)


def _signed_as_asked(envelope: Path, sign_key: Path | None) -> bool:
    from audit.report.signing import key_id, load_private_key

    if sign_key is None:
        return not envelope.exists()
    if not envelope.exists():
        return False
    wanted = key_id(load_private_key(sign_key).public_key())
    signed = [s.get("keyid") for s in json.loads(envelope.read_text(encoding="utf-8")).get("signatures", [])]
    return wanted in signed


# ---------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------


def demo_adapter_dir() -> Path:
    """The demo's distilled adapter, shipped inside the package (examples/ is package data)."""
    return Path(str(resources.files("audit") / "examples" / "demo-adapter")).resolve()


def demo_options(out_dir: Path, quiet: bool = False) -> RunOptions:
    """The example config, with the packaged adapter as suspect and the database and report under ``out_dir``."""
    from audit.distill import read_marker

    config = load_config(Path(str(resources.files("audit") / "examples" / "audit.toml")))
    adapter = demo_adapter_dir()
    student = read_marker(adapter)["student"]
    config.update(suspect=f"peft:{student}+{adapter}", db_path=out_dir / "audit.db", out_dir=out_dir / "report",
                  quiet=quiet)
    return run_options(**config)


def run_demo(out_dir: Path, quiet: bool = False) -> str:
    """`distill-audit demo`: the whole audit of the demo's distilled student; says where the report is."""
    options = demo_options(out_dir, quiet)
    out_dir.mkdir(parents=True, exist_ok=True)
    return run_pipeline(options)
