"""`distill-audit probes ...`: list, show, stats, build, export.

Thin: each command parses its options and calls the ``audit.probes`` API;
files are written atomically (temporary file + rename), so an interrupted
command leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from collections import Counter
from pathlib import Path

import click

from audit.errors import SuiteError

SHOW_WIDTH = 160
CSV_FIELDS = ["id", "category", "subcategory", "text", "reference", "split", "pair_of"]


@click.group()
def probes() -> None:
    """The behavioral probe suites: list, inspect, build private splits, export."""


@probes.command("list")
def list_command() -> None:
    """List the built-in suites with their version, size and sha256."""
    from audit.probes import list_suites

    for suite in list_suites():
        click.echo(f"{suite['name']}  version {suite['version']}  {suite['n']} probes  sha256 {suite['hash']}")


@probes.command()
@click.argument("name")
@click.option("--category", default=None, help="Only this category.")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Probes to show (0: all).")
def show(name: str, category: str | None, limit: int) -> None:
    """Print probes of suite NAME (a built-in name or a JSONL/CSV file): id, category/subcategory, text."""
    from audit.probes import load_suite

    suite = load_suite(name)
    chosen = _in_category(suite, category)
    for probe in chosen[:limit or None]:
        text = probe.text.replace("\n", "\\n")
        text = text if len(text) <= SHOW_WIDTH else text[:SHOW_WIDTH - 3] + "..."
        reference = f"  reference={json.dumps(probe.reference, ensure_ascii=False)}" if probe.reference else ""
        click.echo(f"{probe.id}  {probe.category}/{probe.subcategory}  {text}{reference}")


def _in_category(suite, category: str | None) -> list:
    if category is None:
        return suite.probes
    chosen = [p for p in suite.probes if p.category == category]
    if not chosen:
        known = ", ".join(sorted({p.category for p in suite.probes}))
        raise SuiteError(f"{suite.name}: no category {category!r}; categories: {known}")
    return chosen


@probes.command()
@click.argument("name")
def stats(name: str) -> None:
    """Counts per category and subcategory, references, pairs and prompt-length distribution of suite NAME."""
    from audit.probes import load_suite

    suite = load_suite(name)
    click.echo(f"{suite.name}  version {suite.version}  {len(suite.probes)} probes  sha256 {suite.hash}")
    lengths = sorted(len(p.text) for p in suite.probes)
    click.echo(f"characters: min {lengths[0]}  median {statistics.median(lengths):g}  "
               f"p90 {lengths[int(0.9 * (len(lengths) - 1))]}  max {lengths[-1]}")
    with_reference = sum(p.reference is not None for p in suite.probes)
    pairs = sum(p.pair_of is not None for p in suite.probes)
    click.echo(f"with a checkable reference: {with_reference}  declared perturbation pairs: {pairs}")
    categories = Counter(p.category for p in suite.probes)
    subcategories = Counter((p.category, p.subcategory) for p in suite.probes)
    for category in sorted(categories):
        median = statistics.median(len(p.text) for p in suite.probes if p.category == category)
        click.echo(f"{category:<24}{categories[category]:>6}   median {median:g} chars")
        for (cat, sub), count in sorted(subcategories.items()):
            if cat == category:
                click.echo(f"  {sub or '(none)':<30}{count:>6}")


@probes.command()
@click.option("--secret-seed-env", "seed_env", metavar="VAR", default=None,
              help="Name of the environment variable that holds the secret seed (preferred).")
@click.option("--secret-seed", "seed", default=None,
              help="The secret seed itself (lands in your shell history; prefer --secret-seed-env).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private split as JSONL (mode 0600, written atomically).")
def build(seed_env: str | None, seed: str | None, out_path: Path) -> None:
    """Build a private split of bbi-probes-v1 from a secret seed: same shape, prompts no model has seen.

    Only the seed's sha256 is printed and recorded; keep the seed itself to
    rebuild the same split later.
    """
    from audit.probes import build_private_suite
    from audit.probes.generate import atomic_write, canonical_jsonl

    secret = _secret(seed_env, seed)
    suite = build_private_suite(secret)
    atomic_write(out_path, canonical_jsonl(suite.probes), mode=0o600)
    click.echo(f"wrote {len(suite.probes)} private probes to {out_path}  suite sha256 {suite.hash}  "
               f"private seed sha256 {suite.private_seed_hash}")


def _secret(seed_env: str | None, seed: str | None) -> str:
    if (seed_env is None) == (seed is None):
        raise click.UsageError("give exactly one of --secret-seed-env VAR or --secret-seed S")
    if seed is not None:
        click.echo("warning: --secret-seed puts the seed in your shell history; prefer --secret-seed-env", err=True)
        return seed
    value = os.environ.get(seed_env, "")
    if not value:
        raise SuiteError(f"--secret-seed-env {seed_env}: the environment variable is unset or empty")
    return value


@probes.command()
@click.argument("name")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (atomically).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="jsonl is the canonical form the suite hash is computed over; csv opens in a spreadsheet.")
def export(name: str, out_path: Path, fmt: str) -> None:
    """Write suite NAME (built-in or a user file) to a JSONL or CSV file that `load_suite` reads back."""
    from audit.probes import load_suite
    from audit.probes.generate import atomic_write, canonical_jsonl

    suite = load_suite(name)
    data = canonical_jsonl(suite.probes) if fmt == "jsonl" else _csv_bytes(suite.probes)
    atomic_write(out_path, data)
    click.echo(f"wrote {len(suite.probes)} probes of {suite.name} to {out_path} ({fmt})  suite sha256 {suite.hash}")


def _csv_bytes(probes) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for p in probes:
        writer.writerow({"id": p.id, "category": p.category, "subcategory": p.subcategory, "text": p.text,
                         "reference": json.dumps(p.reference, ensure_ascii=False, sort_keys=True) if p.reference else "",
                         "split": p.split, "pair_of": p.pair_of or ""})
    return buffer.getvalue().encode("utf-8")
