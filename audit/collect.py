"""The collect stage: ask teacher, suspect and controls the probes, recording every query.

Resumable by construction: each batch of responses is committed in one
transaction keyed by (audit, model, probe, sample, purpose), and a rerun asks
only what is not yet answered. A run killed at any point (even ``kill -9``)
loses at most the batch in flight and never duplicates a row. Failed queries
are recorded as error rows and asked again on the next run. A resume must
ask what the first run asked (``audit.settings.ASKED``): other settings are
refused, and ``--new-run`` sets the earlier audit aside instead of mixing
into it.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from audit.errors import AuditError
from audit.models.base import Generation, GenParams, Model
from audit.probes.types import Probe
from audit.settings import first_asked_difference, options_class, recorded_config
from audit.store import Store, content_hash, set_aside


DEFAULT_ROUND_SIZE = 10


class CollectRules:
    """The rules between collection settings, checked as options are made, and what they give the stages.

    `CollectOptions` is this with one field per collect setting (`audit.settings`, the same names as the
    flags); round_size, stop_rule and max_cost apply to a sequential audit only.
    """

    def __post_init__(self) -> None:
        self.top_logprobs = self.top_logprobs or 0  # the flag's "not given" (None) is no top-k
        if self.round_size is not None and self.round_size < 1:
            raise AuditError(f"--round-size {self.round_size}: a round asks at least one probe per model")
        if self.sequential:
            self.round_size = self.round_size if self.round_size is not None else DEFAULT_ROUND_SIZE
            self.stop_rule = self.stop_rule or ("certify" if self.epsilon_threshold is not None else "provenance")
        elif self.round_size is not None or self.stop_rule is not None or self.max_cost is not None:
            raise AuditError("--round-size, --stop-rule and --max-cost apply to a sequential audit: add --sequential")
        if self.stop_rule == "certify" and self.epsilon_threshold is None:
            raise AuditError("--stop-rule certify needs --epsilon-threshold E (the ε the suspect is certified not "
                             "to exceed)")
        if self.epsilon_threshold is not None and not 0.0 <= self.epsilon_threshold <= 1.0:
            raise AuditError(f"--epsilon-threshold {self.epsilon_threshold}: an advantage threshold lies in [0, 1]")
        if self.sequential and self.queries is not None and self.round_size > self.queries:
            raise AuditError(f"--round-size {self.round_size} is above the budget --probes {self.queries}: "
                             "a round must fit in the budget")

    def gen_params(self) -> GenParams:
        return GenParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                         seed=self.seed, batch_size=self.batch_size, top_logprobs=self.top_logprobs)

    def recorded(self) -> dict:
        """The audit config as recorded (`audit.settings.recorded_config`)."""
        return recorded_config(self)


CollectOptions = options_class("CollectOptions", CollectRules, __name__)


@dataclass
class RoleTally:
    """What one model's collection did in this run, for the summary line."""

    name: str
    asked: int = 0
    answered: int = 0
    errors: int = 0
    already: int = 0
    pending: int = 0
    seconds: float = 0.0
    stopped: bool = False
    error_samples: list[str] = field(default_factory=list)
    top_logprobs_asked: int = 0
    top_logprobs_given: int = 0  # the most top log-probabilities any response of this run gave per token


def model_names(teacher: str, suspect: str, controls: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(name, role, spec) for every model of the audit; controls get a short readable unique name.

    Every spec is parsed here (cheap: no file or endpoint is touched), so a malformed or unknown one is
    refused before collection creates its database."""
    from audit.models import parse_spec

    for spec in (teacher, suspect, *controls):
        parse_spec(spec)
    named = [("teacher", "teacher", teacher), ("suspect", "suspect", suspect)]
    seen: set[str] = set()
    for spec in controls:
        base = control_name(spec)
        name, i = base, 2
        while name in seen:
            name, i = f"{base}-{i}", i + 1
        seen.add(name)
        named.append((f"control:{name}", "control", spec))
    return named


def control_name(spec: str) -> str:
    """A short name for a control, from its spec: the alias, the model id, or the last path part (a control replayed
    from another audit keeps its name there, not its role's prefix)."""
    if "#" in spec:
        return spec.rsplit("#", 1)[1].removeprefix("control:")
    tail = spec.split(":", 1)[1] if ":" in spec and not spec.startswith(("/", ".")) else spec
    tail = tail.rstrip("/").split("+")[-1]
    return Path(tail).name or spec


def choose_probes(options: CollectOptions, training: set[str] = frozenset()) -> tuple[list, list[Probe], str | None]:
    """The suites (public, and private when a secret seed is given) and the probes the audit asks.

    Probes this database already used to train a student (``distill``) are
    left out before sampling: an audit never evaluates on training probes.
    """
    from audit.probes import build_private_suite, load_suite, sample_probes

    def sample(suite):
        usable = replace(suite, probes=[p for p in suite.probes if p.id not in training])
        return sample_probes(usable, options.queries, options.seed)

    suite = load_suite(options.suite)
    suites = [suite]
    chosen = sample(suite)
    seed_hash = None
    if options.private_seed_env:
        if suite.source != "builtin":
            raise AuditError(
                f"--private-seed-env: private splits come from the built-in generator, and --suite "
                f"{options.suite} is a file; make a private file with `distill-audit probes build` instead"
            )
        secret = os.environ.get(options.private_seed_env, "")
        if not secret:
            raise AuditError(
                f"--private-seed-env {options.private_seed_env}: that environment variable is unset or empty"
            )
        private = build_private_suite(secret)
        seed_hash = private.private_seed_hash
        suites.append(private)
        chosen += sample(private)
    return suites, chosen, seed_hash


def adapter_training_probes(options: CollectOptions) -> dict[str, str]:
    """Probe id -> the spec of the peft adapter among suspect and controls that was trained on it (its marker)."""
    from audit.distill import training_probe_ids
    from audit.models import parse_spec

    trained: dict[str, str] = {}
    for spec in (options.suspect, *options.controls):
        adapter = parse_spec(spec).adapter
        if adapter is not None:
            trained.update({probe_id: spec for probe_id in training_probe_ids(adapter)})
    return trained


def check_specs(named: list[tuple[str, str, str]], deadline: float | None = None) -> dict:
    """Check every spec before any query is asked, so a bad one fails before any work starts; spec -> what its
    check found, for ``load_model`` (which then checks nothing twice)."""
    from audit.models import check_spec

    return {spec: check_spec(spec, deadline=deadline) for _name, _role, spec in named}


def run_collect(options: CollectOptions) -> str:
    """The `collect` command: returns a short summary of what was asked and recorded."""
    if options.sequential:
        from audit.collect_sequential import run_sequential

        return run_sequential(options)
    from audit.models import load_model
    from audit.progress import progress

    # --max-seconds bounds everything from here on, endpoint checks, requests and retries included.
    deadline = time.monotonic() + options.max_seconds if options.max_seconds is not None else None
    named = model_names(options.teacher, options.suspect, options.controls)
    store = Store.open(options.db_path)
    audit = store.audit()
    training = {p["id"] for p in store.selected_probes("train")} if audit else set()
    suites, probes, seed_hash = choose_probes(options, training)
    if audit is not None and not options.new_run:
        check_resumable(store, audit, options, probes)
    checked = check_specs(named, deadline)
    started_over = None
    if audit is not None and options.new_run:
        store.close()
        started_over = f"started over: the earlier audit is kept as {set_aside(options.db_path)}"
        store = Store.open(options.db_path)
    store.ensure_audit(
        options.recorded(), suite_name=suites[0].name, suite_version=suites[0].version,
        suite_hash=suites[0].hash, seed=options.seed, private_seed_hash=seed_hash,
    )
    store.update_audit(config=options.recorded(), status="collecting")
    for suite in suites:
        store.add_suite(suite)
    store.select_probes([p.id for p in probes], purpose="eval")

    tallies = []
    with progress(options.quiet) as bar:
        for name, role, spec in named:
            model = load_model(checked[spec], device=options.device, dtype=options.dtype,
                               concurrency=options.concurrency, deadline=deadline)
            model_id = store.add_model(name=name, role=role, spec=spec,
                                       description=model.describe().as_dict())
            tally = collect_role(store, model_id, name, model, probes, options.gen_params(),
                                 samples=options.samples, deadline=deadline, bar=bar)
            tallies.append(tally)
            del model
            gc.collect()
            if tally.stopped:
                break
    complete = len(tallies) == len(named) and all(not t.stopped and t.errors == 0 for t in tallies)
    store.update_audit(status="collected" if complete else "collecting",
                       config={**options.recorded(), **collection_environment()})
    summary = summarize(options.db_path, tallies, complete)
    return summary if started_over is None else f"{started_over}\n{summary}"


def check_resumable(store: Store, audit: dict, options: CollectOptions, probes: list[Probe] | None) -> None:
    """A resume asks what the first run asked: other settings are refused with one line naming the first one.

    Otherwise a second run's responses would merge silently into the first's,
    and the report would describe one run's settings over both. A database
    that holds no evaluation selection yet (only ``distill``'s training
    responses) may start an audit with any settings.
    """
    asked = {row["id"] for row in store.selected_probes("eval")}
    if not asked:
        return
    try:
        recorded = json.loads(audit["config_json"] or "")
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        raise AuditError(f"{options.db_path}: the recorded settings of its audit are unreadable; "
                         "--new-run starts over in this file, or use another --db")
    wanted = options.recorded()
    differs = first_asked_difference(recorded, wanted)
    if differs is not None:
        first = recorded.get(differs.name, differs.asked_before)
        _refuse_resume(options, f"{differs.flag} {_shown(first)}, not {_shown(wanted.get(differs.name))}")
    if probes is not None and asked != {p.id for p in probes}:
        _refuse_resume(options, f"other probes of --suite {_shown(options.suite)} (its file or the "
                                "--private-seed-env secret has changed since)")


def _refuse_resume(options: CollectOptions, difference: str) -> NoReturn:
    raise AuditError(f"{options.db_path} was collected with {difference}: use the same settings to resume, "
                     "--new-run to start over in this file, or another --db")


def _shown(value) -> str:
    """A recorded setting for a one-line message; text read from a database is shown escaped, never raw."""
    if value is None or value == []:
        return "(not given)"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return value if isinstance(value, str) and value.isprintable() else repr(value)


def collect_role(store: Store, model_id: str, name: str, model: Model, probes: list[Probe],
                 params: GenParams, *, samples: int = 1, purpose: str = "eval", deadline: float | None = None,
                 bar=None, on_batch: Callable[[int], None] | None = None) -> RoleTally:
    """Ask one model every (probe, sample) it has not answered yet, committing batch by batch.

    Prompts are sorted by length so a batch pads little; each (probe, sample)
    is asked with its own seed (``query_seed``), recorded in its params, so
    any response is reproduced by asking its probe alone with them. The
    ``deadline`` is checked between batches here and, by HTTP backends, inside
    a batch too: a prompt it stopped is not recorded (a rerun asks it), the
    batch's responses are. Every response is bounded (``Generation.bounded``)
    before it is recorded, whichever backend gave it.
    """
    done = store.completed_queries(model_id, purpose)
    todo = [(p, s) for s in range(samples) for p in probes if (p.id, s) not in done]
    tally = RoleTally(name=name, already=len(probes) * samples - len(todo), pending=len(todo),
                      top_logprobs_asked=params.top_logprobs)
    task = bar.add_task(f"{name:<18}", total=len(probes) * samples, completed=tally.already,
                        status="") if bar is not None else None
    for sample in range(samples):
        pending = sorted((p for p, s in todo if s == sample), key=lambda p: len(p.text))
        for start in range(0, len(pending), params.batch_size):
            if deadline is not None and time.monotonic() >= deadline:
                tally.stopped = True
                return tally
            batch = pending[start:start + params.batch_size]
            seeds = [query_seed(params.seed, name, probe.id, sample) for probe in batch]
            t0 = time.perf_counter()
            generations = model.generate([p.text for p in batch], params, seeds=seeds, samples=[sample] * len(batch))
            tally.seconds += time.perf_counter() - t0
            responses = []
            for probe, seed, gen in zip(batch, seeds, generations, strict=True):
                if gen.stopped:
                    tally.stopped = True
                    continue
                gen = _with_top_logprobs_checked(gen, params, tally)
                response = {"probe_id": probe.id, "sample": sample, "params": replace(params, seed=seed).recorded(),
                          **gen.bounded(params.max_new_tokens).as_response()}
                responses.append(response)
                if gen.error is not None:
                    tally.errors += 1
                    if len(tally.error_samples) < 3:
                        tally.error_samples.append(gen.error)
                else:
                    tally.answered += 1
            store.record_responses(model_id, responses, purpose=purpose)
            tally.asked += len(responses)
            tally.pending -= len(responses)
            if task is not None:
                bar.update(task, advance=len(responses), status=f"{tally.errors} errors" if tally.errors else "")
            if on_batch is not None:
                on_batch(len(responses))
            if tally.stopped:
                return tally
    return tally


def _with_top_logprobs_checked(gen: Generation, params: GenParams, tally: RoleTally) -> Generation:
    """A response without the top log-probabilities asked for is a failed query (recorded, asked again): an
    audit asked for distributions must not hold responses silently without them. Fewer per token than asked
    (an endpoint's own cap) are kept as given, and the summary says so."""
    if not params.top_logprobs or gen.error is not None:
        return gen
    if gen.top_k is None or (gen.top_k.positions and not gen.top_k.most_given):
        return Generation(finish_reason="error", latency_s=gen.latency_s, request=gen.request,
                          error=f"no top log-probabilities in the response (asked for {params.top_logprobs} per token "
                                "with --top-logprobs); the backend or endpoint does not give them")
    tally.top_logprobs_given = max(tally.top_logprobs_given, gen.top_k.most_given)
    return gen


def collection_environment() -> dict:
    """The hardware and software the responses were collected with, for the report's reproducibility manifest."""
    import platform
    import sys
    from importlib import metadata

    from audit import threads

    hardware = {"machine": platform.machine(), "cpus": os.cpu_count(),
                "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                **threads.current().recorded()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        hardware["gpu"] = torch.cuda.get_device_name()
    software = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("distill-audit", "torch", "transformers", "peft", "httpx"):
        try:
            software[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {"hardware": hardware, "software": software}


def query_seed(audit_seed: int, model_name: str, probe_id: str, sample: int) -> int:
    """The sampling seed of one query: the first 63 bits of the content hash (sha256 of canonical JSON) of
    [audit seed, model name, probe id, sample].

    Each model of an audit (teacher, suspect, every control) draws its own
    random numbers for each probe and sample: with one stream shared by
    every role, two models with a tokenizer in common agreed more than they
    should (the same spec as teacher and suspect gave 16 of 16 identical
    responses at temperature 0.8). It depends on nothing else (not the batch,
    nor the other probes), so any sample can be asked again alone.
    """
    return int(content_hash([audit_seed, model_name, probe_id, sample])[:16], 16) >> 1


def summarize(db_path: Path, tallies: list[RoleTally], complete: bool) -> str:
    lines = []
    for t in tallies:
        line = (f"{t.name}: {t.answered} answered, {t.errors} failed this run "
                f"({t.already} already recorded) in {t.seconds:.1f} s")
        if t.error_samples:
            line += f"; first error: {t.error_samples[0]}"
        if t.answered and t.top_logprobs_given < t.top_logprobs_asked:
            line += (f"; note: it gave at most {t.top_logprobs_given} top log-probabilities per token, not the "
                     f"{t.top_logprobs_asked} asked (--top-logprobs), recorded as given")
        lines.append(line)
    if complete:
        lines.append(f"collection complete: {db_path}")
    elif any(t.stopped for t in tallies):
        lines.append(f"stopped at the --max-seconds deadline: the responses so far are kept; run the same command "
                     f"again to resume ({db_path})")
    else:
        lines.append(f"some queries failed and were recorded as errors; run the same command again to retry them ({db_path})")
    return "\n".join(lines)

