"""Every setting of an audit, declared once: flag, type, default, help, audit.toml key, whether it changes
what is asked, and the stage of `run` that reads it.

Made from these declarations, so they cannot drift apart: the Click options of `collect`, `run`, `analyze`
and `report` (and the shared ones of other commands: `--device`, `--dtype`, `--quiet`, `--concurrency`,
`--sign-key`), the fields of `CollectOptions`, the audit.toml keys (``CONFIG_KEYS``), the settings a resume
must repeat (``ASKED``, ``ASKED_SINCE``), the audit config collect records, the stages' own settings
(``RUN_KEYS``) and the analysis settings `run` compares to tell whether an analysis is current. This module
imports nothing heavy: `distill-audit --help` reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

import click


@dataclass(frozen=True, eq=False)
class Setting:
    """One setting. ``variants`` holds what differs when another command takes it: command name -> Click
    keywords (a help text, a default, whether it is required)."""

    name: str  # the parameter's name: a field of CollectOptions, a keyword of pipeline.run_options
    flag: str
    help: str
    stage: str = "collect"  # the stage of `run` that takes it: collect, analyze, report, or run itself
    type: Any = None  # a Click type; None is text
    default: Any = None
    required: bool = False
    is_flag: bool = False
    multiple: bool = False
    metavar: str | None = None
    toml: str | None = None  # its audit.toml key when not its name
    in_config: bool = True  # may be set in audit.toml
    asked: bool = False  # it changes what is asked: a resume must repeat it
    asked_before: Any = None  # with asked: the value an audit recorded before the setting existed was asked at
    recorded: bool = True  # a collect setting kept in the audit's recorded config
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    old_names: tuple[str, ...] = ()  # flags and audit.toml keys it was called before, still accepted

    @property
    def config_key(self) -> str | None:
        return (self.toml or self.name) if self.in_config else None

    @property
    def config_keys(self) -> tuple[str, ...]:
        """Its audit.toml key, then the keys it was called before."""
        if not self.in_config:
            return ()
        return (self.config_key, *(name.removeprefix("--").replace("-", "_") for name in self.old_names))

    def option(self, command: str, **behaviour: Any) -> Callable:
        """The Click option of this setting in ``command``; ``behaviour`` adds callbacks, never text."""
        keywords = dict(is_flag=True) if self.is_flag else dict(
            type=self.type, required=self.required, multiple=self.multiple, metavar=self.metavar)
        if self.default is not None and not self.is_flag:  # Click treats an explicit default=None as given
            keywords.update(default=self.default, show_default=True)
        keywords.update({"help": self.help, **self.variants.get(command, {}), **behaviour})
        return click.option(self.flag, *self.old_names, self.name, cls=SettingOption, setting=self, **keywords)


class SettingOption(click.Option):
    """A Click option made from a `Setting` (tests check that the audit commands declare no other)."""

    def __init__(self, *args: Any, setting: Setting, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting = setting


FILE = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(file_okay=False, path_type=Path)
COUNT = click.IntRange(min=1)
JUDGE_SPEC = "Spec of the judge model"

SETTINGS = (
    Setting("config", "--config", "An audit.toml whose keys are these flags' names; flags win over it.",
            stage="run", type=FILE, in_config=False, recorded=False),
    Setting("db_path", "--db", "The audit database (created if missing; resumed if present).", type=FILE,
            required=True, toml="db", recorded=False,
            variants={"analyze": {"help": "The audit database: its recorded responses are analysed and the "
                                          "results written to it."},
                      "report": {"help": "The audit database the report is rendered from, alone."}}),
    Setting("teacher", "--teacher", "Spec of the claimed teacher model.", required=True, asked=True,
            variants={"analyze": {"required": False, "help": (
                "Spec of the teacher that answered (the same weights): adds the teacher-likelihood adversary. "
                "Without it that adversary is skipped; a spec stored in the database is never run.")}}),
    Setting("suspect", "--suspect", "Spec of the suspected student model.", required=True, asked=True),
    Setting("controls", "--control", "Spec of a control model known not to descend from the teacher (repeatable).",
            multiple=True, asked=True),
    Setting("suite", "--suite", "A built-in suite name or a JSONL/CSV file with `text` and `category`.",
            default="bbi-probes-v1", asked=True),
    Setting("private_seed_env", "--private-seed-env",
            "Name of an environment variable holding a secret seed: adds a fresh private split of the same shape "
            "(only the seed's hash is recorded).", metavar="VAR", asked=True),
    Setting("queries", "--probes",
            "Probes to ask each model, stratified by category (default: the whole suite); each is asked --samples "
            "times, so q = probes × samples queries. --queries is its old name.",
            type=COUNT, asked=True, toml="probes", old_names=("--queries",)),
    Setting("samples", "--samples", "Responses per probe and model.", type=COUNT, default=1, asked=True),
    Setting("max_new_tokens", "--max-new-tokens", "Length limit of every response, in generated tokens.",
            type=COUNT, default=128, asked=True),
    Setting("max_seconds", "--max-seconds", "Stop collecting after this many seconds (resume later).",
            type=click.FloatRange(min=0)),
    Setting("batch_size", "--batch-size", "Prompts per forward pass; 1 runs one prompt at a time.", type=COUNT,
            default=32),
    Setting("concurrency", "--concurrency", "Requests in flight at once for HTTP endpoints.", type=COUNT, default=8),
    Setting("temperature", "--temperature", "0 is greedy decoding.", type=click.FloatRange(min=0), default=0.0,
            asked=True),
    Setting("seed", "--seed", "Sampling and probe-selection seed.", type=int, default=0, asked=True,
            variants={"analyze": {"help": "Seed of the analysis' resampling and of the judge's reference "
                                          "responses."}}),
    Setting("top_logprobs", "--top-logprobs",
            "Also record the K most likely tokens and their log-probabilities at every generated token (for "
            "`distill --objective kd` and leakage estimates).", type=COUNT, metavar="K", asked=True, asked_before=0),
    Setting("sequential", "--sequential",
            "Ask in a pre-registered random order, in rounds, and stop as soon as --stop-rule is settled; every "
            "claim is then a confidence sequence, valid under that optional stopping. --probes is the most "
            "probes it may ask.", is_flag=True, default=False, asked=True, asked_before=False),
    Setting("round_size", "--round-size", "With --sequential: probes per model per round (default 10).", type=int,
            metavar="N", asked=True),
    Setting("stop_rule", "--stop-rule",
            "With --sequential: stop when the gap against every control is settled (provenance, the default), "
            "when ε(teacher, suspect) is shown above 0 (distinguished), or when ε ≤ --epsilon-threshold is shown "
            "or refuted (certify).", type=click.Choice(["provenance", "distinguished", "certify"]), asked=True),
    Setting("epsilon_threshold", "--epsilon-threshold",
            "The ε in [0, 1] the suspect is certified not to exceed: the signed claims state passed, failed or "
            "inconclusive against it.", type=float, metavar="E", asked=True),
    Setting("max_cost", "--max-cost",
            "With --sequential: stop once the prices endpoints report in their replies (usage.cost) add up to "
            "this.", type=click.FloatRange(min=0), recorded=False),
    Setting("device", "--device", "auto, cpu, cuda, cuda:N.", default="auto"),
    Setting("dtype", "--dtype", "auto, float32, bfloat16, float16.", default="auto"),
    Setting("quiet", "--quiet", "No progress bars.", is_flag=True, default=False, recorded=False),
    Setting("new_run", "--new-run",
            "--db holds an audit: keep it as DB.1 (the first free number) and start a new one; nothing is deleted. "
            "Without it, a resume must use the same settings (resume the new audit without --new-run).",
            is_flag=True, default=False, in_config=False, recorded=False),
    Setting("out_dir", "--out", "The report folder.", stage="report", type=FOLDER, required=True, toml="out"),
    Setting("judge", "--judge", f"{JUDGE_SPEC} (default: one of another family among those given).",
            stage="analyze", variants={"analyze": {"help": (
                f"{JUDGE_SPEC}. Without it the judge runs only if the default choice (a model of another family, "
                "else the teacher) is the --teacher given here.")}}),
    Setting("no_judge", "--no-judge", "Skip the pairwise LLM judge.", stage="analyze", is_flag=True, default=False),
    Setting("judge_probes", "--judge-probes",
            "The judge reads only the first N probes (of the sequential order, else by id), fixed before any "
            "verdict: a CPU can afford the judge on a subsample (default: every probe).", stage="analyze",
            type=click.IntRange(min=2), metavar="N"),
    Setting("confidence", "--confidence",
            "Confidence level of every interval and confidence sequence (a sequential audit stops at it).",
            stage="analyze", type=click.FloatRange(0.5, 0.999), default=0.95),
    Setting("sign_key", "--sign-key",
            "Ed25519 private key from `distill-audit keygen`; without it the report says it is unsigned.",
            stage="report", type=FILE),
    Setting("no_pdf", "--no-pdf", "HTML only.", stage="report", is_flag=True, default=False),
)
BY_NAME = {s.name: s for s in SETTINGS}


def named(stage: str) -> tuple[str, ...]:
    """The names of the settings of one stage, in declaration order."""
    return tuple(s.name for s in SETTINGS if s.stage == stage)


# Made from the declarations, for the stages
CONFIG_KEYS = {key: s.name for s in SETTINGS for key in s.config_keys}  # audit.toml key (or an old one) -> name
ASKED = tuple(s.name for s in SETTINGS if s.asked)
ASKED_SINCE = {s.name: s.asked_before for s in SETTINGS if s.asked}
RUN_KEYS = named("analyze") + named("report")  # what `run` hands the stages after collect
COLLECT_FIELDS = (*named("collect"), "confidence")  # a sequential collection stops at the analysis' level


def click_options(command: str, names: Iterable[str]) -> Callable:
    """A decorator adding the Click options of these settings to ``command``, in this order."""
    chosen = [BY_NAME[name] for name in names]

    def decorate(fn: Callable) -> Callable:
        for setting in reversed(chosen):
            fn = setting.option(command)(fn)
        return fn

    return decorate


def options_class(name: str, rules: type, module: str) -> type:
    """A dataclass whose fields are the collect settings (``COLLECT_FIELDS``), with ``rules``' methods."""
    fields = []
    for setting in (BY_NAME[n] for n in COLLECT_FIELDS):
        if setting.required:
            fields.append((setting.name, Any))
        else:
            fields.append((setting.name, Any, field(default=() if setting.multiple else setting.default)))
    return make_dataclass(name, fields, bases=(rules,), namespace={"__module__": module})


def recorded_config(options: Any) -> dict:
    """The audit config collect records: its settings but paths, display and stopping budgets."""
    config = {}
    for name in named("collect"):
        if BY_NAME[name].recorded:
            value = getattr(options, name)
            config[name] = list(value) if isinstance(value, tuple) else value
    return config


def first_asked_difference(recorded: Mapping, wanted: Mapping) -> Setting | None:
    """The first setting that decides what is asked and differs between a recorded config and a wanted one; a
    record from before a setting existed was asked at its ``asked_before`` value."""
    for setting in SETTINGS:
        if setting.asked and recorded.get(setting.name, setting.asked_before) != wanted.get(setting.name):
            return setting
    return None


def analysis_settings(*, judge: str | None, use_judge: bool, judge_probes: int | None, confidence: float) -> dict:
    """The analyze settings an analysis ran with, as it records them and as `run` compares them: with the judge
    off, which judge and on how many probes do not matter."""
    return {"judge": judge if use_judge else None, "no_judge": not use_judge,
            "judge_probes": judge_probes if use_judge else None, "confidence": confidence}
