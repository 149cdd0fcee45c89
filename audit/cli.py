"""The `distill-audit` command line: parse options, call one function per command.

Nothing heavy is imported at module level, so `distill-audit --help` never
loads torch; each command imports its stage when it runs. Failures a user can
fix arrive as ``AuditError`` and are printed as one line with exit status 1
(``--debug`` shows the traceback); usage mistakes are Click's exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit import __version__, settings
from audit.errors import AuditError
from audit.text import for_terminal


def echo(text: str, err: bool = False) -> None:
    """Print for a person: what a command prints can quote an endpoint, a model or a received database, so
    escape sequences and control characters are removed first (an error body could retitle the terminal
    or write its clipboard)."""
    click.echo(for_terminal(str(text)), err=err)


class AuditGroup(click.Group):
    """Turns ``AuditError`` into one line on stderr and exit 1, unless ``--debug``."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AuditError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            echo("interrupted: work recorded so far is kept; run the same command again to resume", err=True)
            ctx.exit(130)


@click.group(cls=AuditGroup)
@click.version_option(__version__, prog_name="distill-audit")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option("--threads", default=None, metavar="N",
              help="CPU threads to compute with (default: $DISTILL_AUDIT_THREADS, else $OMP_NUM_THREADS, "
                   "else the CPUs this process may use: affinity and cgroup quota).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, threads: str | None) -> None:
    """Audit a suspected LLM distillation: can a bounded adversary tell the suspect from the claimed teacher?

    Every claim is an (epsilon, q, t, A) bound: the distinguishing advantage
    with its confidence interval, for q recorded queries, t recorded compute
    and a named adversary class A, over an explicit probe suite.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    from audit import threads as thread_policy  # before any command imports torch: OpenMP reads it once

    thread_policy.apply(thread_policy.choose(threads))


def main() -> None:
    cli(prog_name="distill-audit")


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


@cli.command()
@settings.click_options("collect", settings.named("collect"))
def collect(**options) -> None:
    """Ask teacher, suspect and controls the probes, recording every query; resumes where it stopped."""
    from audit.collect import CollectOptions, run_collect

    summary = run_collect(CollectOptions(**options))
    echo(summary)


@cli.command()
@click.argument("specs", nargs=-1, required=True)
@settings.click_options("models", ["device"])
def models(specs: tuple[str, ...], device: str) -> None:
    """Show what each model SPEC resolves to (backend, parameters, fingerprint), or why it cannot load."""
    from audit.models import describe_spec

    failed = False
    for spec in specs:
        try:
            echo(describe_spec(spec, device=device))
        except AuditError as exc:
            failed = True
            echo(f"{spec}: cannot load: {exc}", err=True)
    if failed:
        sys.exit(1)


from audit.probes.cli import probes  # noqa: E402  (light: no torch)

cli.add_command(probes)


@cli.command()
@settings.click_options("analyze", ["db_path", "teacher", "judge", "no_judge", "judge_probes", "confidence", "seed",
                                    "quiet"])
def analyze(db_path: Path, teacher: str | None, judge: str | None, no_judge: bool, judge_probes: int | None,
            confidence: float, seed: int, quiet: bool) -> None:
    """Run the adversaries and statistics over the recorded transcripts; writes the results table."""
    from audit.analyze import run_analysis

    echo(run_analysis(db_path, teacher_spec=teacher, judge_spec=judge, use_judge=not no_judge,
                      judge_probes=judge_probes, confidence=confidence, seed=seed, quiet=quiet))


@cli.command()
@settings.click_options("report", ["db_path", "out_dir", "sign_key", "no_pdf"])
def report(db_path: Path, out_dir: Path, sign_key: Path | None, no_pdf: bool) -> None:
    """Render the HTML/PDF report from the database alone, with its manifest, and sign it."""
    from audit.report import render_report

    echo(render_report(db_path, out_dir, sign_key=sign_key, pdf=not no_pdf))


@cli.command()
@click.option("--out", "out_base", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Writes OUT (private key, mode 0600) and OUT.pub.")
def keygen(out_base: Path) -> None:
    """Make an Ed25519 key pair for signing reports."""
    from audit.report.signing import keygen as make_keys

    echo(make_keys(out_base))


@cli.command()
@click.argument("report_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The signer's public key, as you got it from them (never the one inside the folder).")
@click.option("--key-id", default=None, metavar="KEYID",
              help="The signer's key id (64 hex digits), as you got it from them: the folder's signer.pub is "
                   "used only if its id is this one.")
def verify(report_dir: Path, public_key: Path | None, key_id: str | None) -> None:
    """Check a report's signature against a key you trust, and every file's hash; exit 0 only if all match."""
    from audit.report.signing import verify_report

    echo(verify_report(report_dir, public_key=public_key, pinned_key_id=key_id))


@cli.command()
@click.option("--teacher", required=True, help="Spec of the teacher whose recorded responses are imitated.")
@click.option("--student", required=True, help="Spec of the base model the LoRA adapter is trained on.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Database holding (or to record) the teacher's responses to training probes.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Adapter folder to write; an unfinished run there is resumed.")
@click.option("--train-probes", "--train-queries", "train_queries", type=click.IntRange(min=1), default=None,
              help="First have the teacher answer this many training probes (never evaluation probes); "
                   "without it, the training responses already in --db are used. --train-queries is its old name.")
@click.option("--suite", default="bbi-probes-v1", show_default=True,
              help="Suite to draw training probes from (a database's own audit suite wins).")
@click.option("--private-seed-env", default=None, metavar="VAR",
              help="Draw training probes from the private split of this secret seed instead: no public-suite "
                   "audit can ever evaluate on them.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True,
              help="Length limit of the teacher's training responses.")
@click.option("--top-logprobs", type=click.IntRange(min=1), default=None, metavar="K",
              help="With --train-probes: also record the teacher's K most likely tokens at every response token "
                   "(what --objective kd trains on).")
@click.option("--objective", type=click.Choice(["sft", "kd", "sft+kd"]), default="sft", show_default=True,
              help="sft: cross-entropy on the teacher's text; kd: KL divergence from the teacher's recorded top-k "
                   "distributions (tail mass as one bucket; same tokenizer required); sft+kd: their sum.")
@click.option("--exposure", default=None, metavar="POLICY",
              help="What the teacher exposes before training: text, top-k:K, and steps joined by + "
                   "(temperature:T, noise:SIGMA, round:D, purify:STRENGTH, the learned defence). Default: text "
                   "for sft, all recorded top-k for kd.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the training probes' sample, the teacher's sampling, the exposure's noise and training.")
@click.option("--rank", type=click.IntRange(min=1), default=8, show_default=True, help="LoRA rank.")
@click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=16.0, show_default=True,
              help="LoRA alpha (scale = alpha / rank).")
@click.option("--target-modules", default="q_proj,k_proj,v_proj,o_proj", show_default=True,
              help="Comma-separated module names that get LoRA weights.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True,
              help="AdamW's peak learning rate (a short warm-up, then linear decay to zero).")
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Passes over the training responses.")
@click.option("--max-length", type=click.IntRange(min=8), default=256, show_default=True,
              help="Tokens per example (prompt + response); longer ones are cut.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Training examples per optimizer step.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=20, show_default=True,
              help="Steps between resumable checkpoints.")
@click.option("--overwrite", is_flag=True, help="Replace an existing adapter folder.")
@settings.click_options("distill", ["concurrency", "device", "dtype", "quiet"])
def distill(target_modules: str, **options) -> None:
    """Train a LoRA student on the teacher's responses to training probes (the audit's positive control)."""
    import shlex

    from audit.distill import DistillOptions, run_distill

    modules = tuple(m.strip() for m in target_modules.split(",") if m.strip())
    command = shlex.join(["distill-audit", *sys.argv[1:]])
    echo(run_distill(DistillOptions(target_modules=modules, command=command, **options)))


@cli.command()
@click.option("--teacher", required=True, help="Spec of the teacher whose exposure is measured (a local model: KD "
                                               "needs its token ids).")
@click.option("--student", required=True, help="Spec of the base model every student's LoRA adapter is trained on "
                                               "(the teacher's tokenizer); also the curves' point at 0 examples.")
@click.option("--policy", "policies", multiple=True, required=True, metavar="POLICY",
              help="An exposure policy to distil students under (repeatable): text, top-k:K, and steps joined by + "
                   "(temperature:T, noise:SIGMA, round:D, purify:STRENGTH).")
@click.option("--train-sizes", required=True, metavar="N,N,...",
              help="Training examples per student, e.g. 100,400: one student per policy and size.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The leakage database (created if missing; resumed if present).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the students (OUT/students/) and the signed report (OUT/report/).")
@settings.click_options("leakage", ["sign_key"])
@click.option("--eval-probes", "--eval-queries", "eval_queries", type=click.IntRange(min=1), default=48,
              show_default=True, help="Public evaluation probes every student and the teacher answer (no student "
                                      "trained on them). --eval-queries is its old name.")
@click.option("--top-logprobs", type=click.IntRange(min=1), default=None, metavar="K",
              help="Tokens per position to record (default: the largest top-k:K of the policies, else 20).")
@click.option("--epochs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Passes of every student over its training responses.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True,
              help="Length limit of every response, training and evaluation.")
@click.option("--suite", default="bbi-probes-v1", show_default=True,
              help="The suite training and evaluation probes are drawn from (a built-in name or a JSONL/CSV file).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the probe samples, the students' training and the estimates' resampling.")
@settings.click_options("leakage", ["device", "dtype", "quiet"])
def leakage(train_sizes: str, policies: tuple[str, ...], **options) -> None:
    """Distil a student per exposure policy and training size, audit each against the teacher, sign the curves."""
    from audit.leakage import LeakageOptions, parse_sizes, run_leakage

    echo(run_leakage(LeakageOptions(train_sizes=parse_sizes(train_sizes), policies=policies, **options)))


def _read_config(ctx: click.Context, _param: click.Parameter, path: Path | None) -> None:
    """Load audit.toml into Click's defaults, so a flag given on the command line wins over the file."""
    if path is not None:
        from audit.pipeline import load_config

        ctx.default_map = {**(ctx.default_map or {}), **load_config(path)}


@cli.command()
@settings.BY_NAME["config"].option("run", callback=_read_config, is_eager=True, expose_value=False)
@settings.click_options("run", [s.name for s in settings.SETTINGS if s.name != "config"])
def run(**options) -> None:
    """The whole audit: collect, analyze, report and sign, each stage skipped when already done; resumable."""
    from audit.pipeline import run_options, run_pipeline

    echo(run_pipeline(run_options(**options)))


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Folder for the demo's database (audit.db) and report (report/).")
@settings.click_options("demo", ["quiet"])
def demo(out_dir: Path, quiet: bool) -> None:
    """Audit the bundled distilled student (gemma3-270m + LoRA on smollm2-135m-instruct's responses) end to end."""
    from audit.pipeline import run_demo

    echo(run_demo(out_dir, quiet=quiet))
