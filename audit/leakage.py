"""`distill-audit leakage`: how much closer to the teacher a student gets under each exposure policy, signed.

For every exposure policy (``audit.exposure``) and training size, a LoRA
student is distilled on what the teacher exposes of its responses to that many
training probes, and audited against the teacher; beside the curves, the CMI
estimate and utility of each policy (``audit.cmi``). The stages, each
resumable, each skipped when its output is already there:

1. the teacher answers the training probes of every size, smallest first
   (each size a stratified sample, topped up to the next), recording its top-k
   distributions: ``distill``'s own path, once for all students;
2. every policy is applied to those recordings before any training, so a K
   above what was recorded, missing distributions or another tokenizer fail
   before minutes of work;
3. one student per (policy, size) in ``OUT/students/<policy>-<size>/`` by
   ``distill``: a finished one (its completion marker, made by exactly this
   plan) is kept, a half-trained one resumes from its checkpoint;
4. one audit in the same database, collected like any other (resumable): the
   teacher, the undistilled base student as the suspect (every curve's point
   at 0 examples) and every student as a control, on ``--eval-probes``
   public probes; the store never lets a training probe be evaluated;
5. the project's analysis, unchanged, with the teacher named (so the
   teacher-likelihood adversary runs) and without the judge (minutes per
   probe on a CPU; the report says it did not run);
6. the CMI estimate and top-1 utility of every policy on the teacher's
   responses to the evaluation probes (held out from every fit, the learned
   defence's included), written as result rows beside the adversaries';
7. the fidelity of the base model and of every student (``audit.fidelity``):
   each read on the teacher's own evaluation responses, its KL to the
   teacher's recorded distributions and top-1 agreement, and each policy's
   student against its reference's at the same size, paired on the same
   tokens; it answers the question even where a half-trained student
   generates badly and the adversaries' common probe set shrinks;
8. the report in ``OUT/report/``, signed like an audit report, which
   ``distill-audit verify`` checks.

Choices, and why. Every student is trained with ``--objective kd``, ``text``
included: KD on the ``text`` exposure is exactly cross-entropy on the
teacher's generated tokens, so every student sees the same token sequences,
loss scale and learning rate, and the exposure is the only thing that
differs between curves (``sft`` would re-tokenise the text and close the turn
its own way). So every policy needs distributions with token ids and a
student of the teacher's tokenizer: a local teacher. Each ε on a curve is a
comparison's headline row of the analysis (the best adversary, Bonferroni
over adversaries), with its own interval, n and q; no interval spans two
students, and the answer compares two students only by whether their
intervals overlap, saying "inconclusive" when they do. The intervals are over
probes: one student per point, trained once, so the spread between training
runs is not in them.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from audit.errors import AuditError
from audit.store import Store
from audit.results import ResultRow
from audit.vocabulary import (CMI, CONTROL, EVAL, EXPOSURE, EXPOSURE_PREFIX, KL_TO_TEACHER, REFERENCE_ACCURACY,
                              REFERENCE_CHECK, SUSPECT, TEACHER, TEACHER_FORCED, TOP1_AGREEMENT, comparison_name)

OBJECTIVE = "kd"
REPORT_DIR = "report"
STUDENTS_DIR = "students"
DEFAULT_TOP_LOGPROBS = 20
STAGES = 8
GENERATION_BATCH = 32  # prompts per pass while the teacher answers (distill's own batch size is for training)


@dataclass(frozen=True)
class LeakageOptions:
    """What `distill-audit leakage` takes."""

    teacher: str
    student: str
    policies: tuple[str, ...]
    train_sizes: tuple[int, ...]
    db_path: Path
    out_dir: Path
    sign_key: Path | None = None
    eval_queries: int = 48
    top_logprobs: int | None = None  # None: the largest K of the policies' top-k steps, else DEFAULT_TOP_LOGPROBS
    epochs: int = 1
    max_new_tokens: int = 64
    suite: str = "bbi-probes-v1"
    seed: int = 0
    confidence: float = 0.95
    device: str = "auto"
    dtype: str = "auto"
    quiet: bool = False


@dataclass(frozen=True)
class Student:
    """One point of one curve: the policy, the training size, and where its adapter lives."""

    policy: str
    size: int
    folder: Path

    @property
    def name(self) -> str:
        """Its name in the audit (``control:<folder name>``, as ``collect`` names a peft control)."""
        return f"control:{self.folder.name}"

    def spec(self, base: str) -> str:
        return f"peft:{base}+{self.folder}"


def parse_sizes(text: str) -> tuple[int, ...]:
    """``100,400`` as (100, 400), ascending; anything but distinct positive whole numbers is one line."""
    parts = [part.strip() for part in text.split(",")]
    if not all(re.fullmatch(r"[0-9]+", part) and int(part) > 0 for part in parts):
        raise AuditError(f"--train-sizes {text!r}: needs positive whole numbers separated by commas, e.g. 100,400")
    sizes = [int(part) for part in parts]
    if len(set(sizes)) != len(sizes):
        raise AuditError(f"--train-sizes {text!r}: each size once")
    return tuple(sorted(sizes))


def run_leakage(options: LeakageOptions) -> str:
    """Every stage in order; returns one line per stage, the plain-words answer and how to verify."""
    from audit.report import check_out_dir

    started = time.perf_counter()
    options = _with_top_logprobs(options)
    policies = _parsed_policies(options)
    students = _students(options, policies)
    _check_specs(options)
    check_out_dir(options.db_path, options.out_dir / REPORT_DIR)
    clock = _StageClock(options.quiet)
    lines = [clock(1, "teacher", lambda: _record_teacher(options))]
    fitted = clock(2, "policies", lambda: _check_policies(options))
    lines.append(f"exposure policies: {', '.join(fitted)} applied to the teacher's recorded distributions")
    lines.append(clock(3, "students", lambda: _distil_all(options, students)))
    collect_options = _collect_options(options, students)
    lines.append(clock(4, "evaluation", lambda: _collect(collect_options)))
    if lines[-1].startswith("stopped"):
        return "\n".join(lines)
    lines.append(clock(5, "analysis", lambda: _analyze(options, collect_options)))
    lines.append(clock(6, "cmi", lambda: _record_cmi(options, fitted)))
    lines.append(clock(7, "fidelity", lambda: _record_fidelity(options, students)))
    _record_run(options, students, time.perf_counter() - started, clock.seconds)
    lines += clock(8, "report", lambda: _report(options))
    return "\n".join(lines + [f"stage seconds: {clock.summary()}; whole run {time.perf_counter() - started:.1f} s"])


class _StageClock:
    """Runs the stages in order, says which one is running, and keeps each one's wall seconds."""

    def __init__(self, quiet: bool):
        self.quiet, self.seconds = quiet, {}

    def __call__(self, number: int, name: str, run):
        from audit.progress import console

        if not self.quiet:
            console.print(f"[{number}/{STAGES}] {name}")
        started = time.perf_counter()
        try:
            return run()
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 2)

    def summary(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.seconds.items())


# ---------------------------------------------------------------------------
# Refusals before any work
# ---------------------------------------------------------------------------


def _with_top_logprobs(options: LeakageOptions) -> LeakageOptions:
    """K recorded: the largest a policy exposes unless given; a policy exposing more than the given K is refused."""
    from audit.exposure import TopKStep, parse_policy

    widest = {text: max((s.k for s in parse_policy(text).steps if isinstance(s, TopKStep)), default=0)
              for text in options.policies}
    if options.top_logprobs is None:
        return replace(options, top_logprobs=max(widest.values(), default=0) or DEFAULT_TOP_LOGPROBS)
    for text, k in widest.items():
        if k > options.top_logprobs:
            raise AuditError(f"--policy {text}: exposes {k} tokens per position, but --top-logprobs "
                             f"{options.top_logprobs} records only {options.top_logprobs}; raise --top-logprobs")
    return options


def _parsed_policies(options: LeakageOptions) -> list[str]:
    """The policies' canonical names, each once; a folder name (slug) must tell them apart."""
    from audit.exposure import parse_policy

    names = [parse_policy(text).name for text in options.policies]
    slugs = [slug(name) for name in names]
    if len(set(slugs)) != len(slugs):
        twice = next(name for name in names if slugs.count(slug(name)) > 1)
        raise AuditError(f"--policy {twice}: given twice (or two policies differ only in punctuation); "
                         "give each policy once")
    return names


def slug(policy: str) -> str:
    """A policy as a folder name: ``top-k:20+purify:0.5`` is ``top-k20_purify0.5`` (no ``+``, which ends a
    peft spec's base, and no ``:``)."""
    return "_".join(re.sub(r"[^A-Za-z0-9.-]", "", part) for part in policy.split("+"))


def _students(options: LeakageOptions, policies: list[str]) -> list[Student]:
    """Every (policy, size), the smallest size first, in OUT/students as OUT was given: a student's spec is
    recorded as written, like every spec, so the same command from the same folder resumes."""
    folder = options.out_dir / STUDENTS_DIR
    if "+" in str(folder):
        raise AuditError(f"--out {options.out_dir}: its path holds '+', which a peft:BASE+ADAPTER spec cannot "
                         "name; choose a folder without it")
    return [Student(policy, size, folder / f"{slug(policy)}-{size}") for size in options.train_sizes
            for policy in policies]


def _check_specs(options: LeakageOptions) -> None:
    """A local teacher (KD needs its token ids), a base student a LoRA adapter can sit on, one tokenizer."""
    from audit.models import backend_for, parse_spec
    from audit.models.checkpoints import load_tokenizer
    from audit.models.transformers_backend import tokenizer_fingerprint

    teacher = backend_for(options.teacher)
    parse_spec(f"peft:{options.student}+adapter")  # a base a LoRA adapter can sit on, or one line saying why
    if not teacher.local:
        raise AuditError(f"--teacher {options.teacher}: leakage trains every student by KD on the teacher's "
                         "recorded distributions over token ids, which only a local teacher gives (an endpoint "
                         "gives token texts, a replay what an earlier audit recorded)")
    teacher_vocabulary, student_vocabulary = (tokenizer_fingerprint(load_tokenizer(spec))
                                              for spec in (options.teacher, options.student))
    if teacher_vocabulary != student_vocabulary:
        raise AuditError(f"--student {options.student}: its tokenizer is not the teacher's (vocabulary "
                         f"{student_vocabulary[:12]} vs {teacher_vocabulary[:12]}); KD over token ids needs the "
                         "same one")


# ---------------------------------------------------------------------------
# Stages 1-3: the teacher's training responses, the policies, the students
# ---------------------------------------------------------------------------


def _distill_options(options: LeakageOptions, *, size: int, policy: str = "text", folder: Path | None = None,
                     batch_size: int = 4):
    from audit.distill import DistillOptions

    return DistillOptions(teacher=options.teacher, student=options.student, db_path=options.db_path,
                          out_dir=folder or options.out_dir / STUDENTS_DIR, train_queries=size, suite=options.suite,
                          max_new_tokens=options.max_new_tokens, seed=options.seed, epochs=options.epochs,
                          batch_size=batch_size, device=options.device, dtype=options.dtype, quiet=options.quiet,
                          objective=OBJECTIVE, exposure=policy, top_logprobs=options.top_logprobs,
                          command=shlex.join(["distill-audit", *sys.argv[1:]]))


def _record_teacher(options: LeakageOptions) -> str:
    """The teacher's responses to every size's training probes, smallest size first; a rerun asks nothing."""
    from audit.distill import teacher_training_responses

    with Store.open(options.db_path) as store:
        for size in options.train_sizes:
            teacher_training_responses(store, _distill_options(options, size=size, batch_size=GENERATION_BATCH))
        selected = len(store.selected_probes("train"))
    if selected < max(options.train_sizes):
        raise AuditError(f"--train-sizes {max(options.train_sizes)}: --suite {options.suite} has only {selected} "
                         "probes left for training beside the evaluation ones; use smaller sizes")
    return (f"teacher's training responses: {max(options.train_sizes)} recorded with their top-"
            f"{options.top_logprobs} distributions")


def _check_policies(options: LeakageOptions) -> dict:
    """Every policy, fitted where it learns, applied to the largest size's recordings: the fitted policies."""
    from audit.distill import training_plan

    fitted = {}
    with Store.open(options.db_path) as store:
        for text in options.policies:
            plan = training_plan(store, _distill_options(options, size=max(options.train_sizes), policy=text))
            fitted[plan.policy.name] = plan.policy
    return fitted


def _distil_all(options: LeakageOptions, students: list[Student]) -> str:
    """Each student in turn, the smallest size first; finished ones are kept, half-trained ones resumed."""
    trained = [s for s in students if _distil(options, s)]
    return f"students: {len(trained)} trained now, {len(students) - len(trained)} already finished"


def _distil(options: LeakageOptions, student: Student) -> bool:
    """Train one student unless it is finished (by exactly this plan) and record its training cost; True if
    it was trained, or finished training, now."""
    from audit.distill import COMPLETE_MARKER, finished_adapter, read_marker, run_distill, training_plan

    distill_options = _distill_options(options, size=student.size, policy=student.policy, folder=student.folder)
    if (student.folder / COMPLETE_MARKER).exists():
        with Store.open(options.db_path) as store:
            marker = finished_adapter(student.folder, training_plan(store, distill_options).config)
            if store.cost(student.name, "distill") is None:
                _record_training(store, student, marker, None)
        return False
    started = time.perf_counter()
    run_distill(distill_options)
    marker = read_marker(student.folder)
    with Store.open(options.db_path) as store:
        _record_training(store, student, marker, time.perf_counter() - started)
    return True


def _record_training(store: Store, student: Student, marker: dict, process_wall_s: float | None) -> None:
    """The student's training, as the compute t of its curve point: steps' wall time and tokens from its marker,
    and this process's whole time for it (loading and saving included) when it was trained now."""
    store.record_cost(subject=student.name, stage="distill", tokens_in=marker["tokens"],
                      wall_s=marker["wall_s"], details={
                          "policy": student.policy, "train_size": student.size, "objective": OBJECTIVE,
                          "examples": marker["examples"], "steps": marker["steps"],
                          "epochs": marker["config"]["epochs"],
                          "first_loss": marker["first_loss"], "final_loss": marker["final_loss"],
                          "exposure": marker["config"]["exposure"], "adapter": str(student.folder),
                          "run_id": marker["run_id"], "device": marker["device"],
                          "resumed_at_step": marker.get("resumed_at_step"),
                          "process_wall_s": None if process_wall_s is None else round(process_wall_s, 2)})


# ---------------------------------------------------------------------------
# Stages 4-7: the audit of every student, the CMI estimates, the report
# ---------------------------------------------------------------------------


def _collect_options(options: LeakageOptions, students: list[Student]):
    from audit.collect import CollectOptions

    return CollectOptions(db_path=options.db_path, teacher=options.teacher, suspect=options.student,
                          controls=tuple(s.spec(options.student) for s in students), suite=options.suite,
                          queries=options.eval_queries, max_new_tokens=options.max_new_tokens, seed=options.seed,
                          top_logprobs=options.top_logprobs, device=options.device, dtype=options.dtype,
                          quiet=options.quiet)


def _collect(collect_options) -> str:
    from audit.collect import run_collect
    from audit.pipeline import collection_complete, unasked

    if collection_complete(collect_options):
        return "evaluation responses: already complete (skipped)"
    last = run_collect(collect_options).splitlines()[-1]
    left = unasked(collect_options)
    if left:
        return f"stopped: {left} evaluation queries are not asked yet; run the same command again to resume"
    return f"evaluation responses: {last}"


def _analyze(options: LeakageOptions, collect_options) -> str:
    from audit.analyze import run_analysis
    from audit.pipeline import RunOptions, analysis_current

    run = RunOptions(collect=collect_options, out_dir=options.out_dir / REPORT_DIR, use_judge=False,
                     confidence=options.confidence)
    if analysis_current(run):
        return "analysis: results are current (skipped)"
    summary = run_analysis(options.db_path, teacher_spec=options.teacher,
                           named_specs=(collect_options.suspect, *collect_options.controls), use_judge=False,
                           confidence=options.confidence, seed=options.seed, quiet=options.quiet)
    return f"analysis: {summary.splitlines()[-1]}"


CMI_METRICS = (CMI, TOP1_AGREEMENT)  # rows of a policy's exposure itself: no adversary, a property of what is exposed


def _record_cmi(options: LeakageOptions, fitted: dict) -> str:
    """Each policy's CMI estimate and utility on the teacher's evaluation responses, as result rows (q: the teacher
    queries read; t: their recorded compute and the estimate's wall time)."""
    from audit.cmi import leakage, recorded_distributions

    with Store.open(options.db_path) as store:
        teacher_id = store.model("teacher")["id"]
        responses = recorded_distributions(store, teacher_id, "eval")
        used = {r.query_id for r in responses}
        teacher_rows = [r for r in store.responses(teacher_id, "eval") if r["query_id"] in used]
        teacher_t = {key: float(sum(r[key] or 0 for r in teacher_rows)) for key in ("tokens_in", "tokens_out")}
        teacher_t["wall_s"] = float(sum(r["latency_s"] or 0.0 for r in teacher_rows))
        rows, shown, keeps_top1 = [], [], {}
        for name, policy in fitted.items():
            started = time.perf_counter()
            result = leakage(responses, policy, confidence=options.confidence, seed=options.seed)
            t = {**teacher_t, "adversary": {"estimate_wall_s": round(time.perf_counter() - started, 3)}}
            details = {"policy": policy.recorded(), "tokens": result.tokens, "probes": result.probes,
                       "label": "the raw teacher's top-1 token at each position",
                       "distributions": "the teacher's responses to the evaluation probes, held out from every fit"}
            for metric, estimate in zip(CMI_METRICS, (result.cmi, result.agreement)):
                rows.append(ResultRow.of(estimate, adversary=EXPOSURE, comparison=EXPOSURE_PREFIX + name,
                                         metric=metric, q=len(responses), t=t, details=details))
            shown.append(f"{name} {result.cmi.estimate:.3f}")
            keeps_top1[name] = result.agreement.estimate == 1.0
        store.record_results(rows)
        checked = _record_utility(store, options, keeps_top1)
    return f"CMI estimates (nats per token, {len(used)} teacher responses): {'; '.join(shown)}; {checked}"


def _record_utility(store: Store, options: LeakageOptions, keeps_top1: dict[str, bool]) -> str:
    """Every audited model's checkable-reference accuracy on the evaluation probes, as result rows; the teacher's
    also stands for each policy that keeps every top-1 token of its responses (greedy decoding of what that
    policy exposes gives the very same text). A policy that changes a top-1 token gets no accuracy row: the
    text a user would receive is not the recorded one, and it is not regenerated."""
    from audit.utility import check_responses

    references = {p["id"]: p["reference"] for p in store.selected_probes(EVAL)}
    rows, shown = [], []
    for model in store.models():
        if model["role"] not in (TEACHER, SUSPECT, CONTROL):
            continue
        responses = store.responses(model["id"], EVAL)
        checked = check_responses(responses, references)
        if not checked.by_probe:
            continue
        estimate = checked.accuracy(options.confidence, options.seed)
        details = {"checkable_probes": len(checked.by_probe), "malformed_references": checked.malformed,
                   "read": "each recorded response against its probe's machine-checkable reference"}
        q = sum(len(v) for v in checked.by_probe.values())
        comparisons = ([EXPOSURE_PREFIX + name for name, keeps in keeps_top1.items() if keeps]
                       if model["name"] == TEACHER else [comparison_name(model["name"])])
        rows += [ResultRow.of(estimate, adversary=REFERENCE_CHECK, comparison=comparison, metric=REFERENCE_ACCURACY,
                              q=q, details=details) for comparison in comparisons]
        shown.append(f"{model['name']} {estimate.estimate:.2f}")
    store.record_results(rows)
    return f"reference accuracy ({len([r for r in references.values() if r])} checkable probes): {'; '.join(shown)}"


def _record_fidelity(options: LeakageOptions, students: list[Student]) -> str:
    """The base model's and every student's KL to the teacher and top-1 agreement on the teacher's evaluation
    responses, and each policy's student against its reference policy's at the same size; skipped when every
    row is there (an analysis that reruns clears them)."""
    from audit.cmi import recorded_distributions
    from audit.exposure import reference_policy
    from audit.fidelity import fidelity_rows, teacher_forced
    from audit.progress import add_task, progress

    models = {SUSPECT: options.student, **{s.name: s.spec(options.student) for s in students}}
    with Store.open(options.db_path) as store:
        done = {r.comparison for r in store.results(adversary=TEACHER_FORCED, metric=KL_TO_TEACHER)}
        if all(comparison_name(name) in done for name in models):
            return "fidelity: current (skipped)"
        teacher_id = store.model(TEACHER)["id"]
        recorded = recorded_distributions(store, teacher_id, EVAL)
        by_query = {r["query_id"]: r for r in store.responses(teacher_id, EVAL)}
    teacher_rows = [by_query[r.query_id] for r in recorded]
    read = {}
    with progress(options.quiet) as bar:
        task = add_task(bar, "fidelity", total=len(models))
        for name, spec in models.items():
            read[name] = teacher_forced(spec, teacher_rows, recorded, device=options.device, dtype=options.dtype)
            bar.update(task, advance=1, status=name)
    policies = list(dict.fromkeys(s.policy for s in students))
    by_point = {(s.policy, s.size): s.name for s in students}
    pairs = [(s.name, by_point[(reference, s.size)], {"policy": s.policy, "reference_policy": reference,
                                                      "train_size": s.size})
             for s in students if (reference := reference_policy(s.policy, policies)) is not None]
    with Store.open(options.db_path) as store:
        store.record_results(fidelity_rows(read, pairs, confidence=options.confidence, seed=options.seed))
    shown = "; ".join(f"{name} {fidelity.divergence.mean():.3f}" for name, fidelity in read.items())
    return f"fidelity (KL to the teacher, nats per token, {len(teacher_rows)} teacher responses): {shown}"


def _record_run(options: LeakageOptions, students: list[Student], wall_s: float, stages: dict) -> None:
    """The plan the report draws: policies, sizes, which student is which point, and the settings shared by all."""
    with Store.open(options.db_path) as store:
        store.record_cost(subject="leakage", stage="leakage", wall_s=wall_s, details={
            "policies": list(dict.fromkeys(s.policy for s in students)), "train_sizes": list(options.train_sizes),
            "students": [{"model": s.name, "policy": s.policy, "train_size": s.size} for s in students],
            "base": {"model": "suspect", "spec": options.student}, "objective": OBJECTIVE,
            "top_logprobs": options.top_logprobs, "eval_queries": options.eval_queries, "epochs": options.epochs,
            "max_new_tokens": options.max_new_tokens, "seed": options.seed, "judge": "not run (CPU cost)",
            "stage_seconds": stages, "wall_s": "this invocation's, stages 1-7 (a resumed run counts only its own)"})


def _report(options: LeakageOptions) -> list[str]:
    from audit.report.leakage import render_leakage_report

    return render_leakage_report(options.db_path, options.out_dir / REPORT_DIR, sign_key=options.sign_key)
