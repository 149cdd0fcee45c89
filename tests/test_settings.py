"""audit/settings.py is the one source of the audit's settings: what is made from it matches it."""

from dataclasses import fields

from audit import settings
from audit.cli import cli
from audit.collect import CollectOptions
from audit.pipeline import load_config


def test_collect_options_has_a_field_per_collect_setting():
    assert tuple(f.name for f in fields(CollectOptions)) == settings.COLLECT_FIELDS
    options = CollectOptions(db_path="a.db", teacher="t", suspect="s")
    assert (options.samples, options.max_new_tokens, options.batch_size, options.top_logprobs) == (1, 128, 32, 0)


def test_the_settings_a_resume_repeats():
    assert settings.ASKED == ("teacher", "suspect", "controls", "suite", "private_seed_env", "queries", "samples",
                              "max_new_tokens", "temperature", "seed", "top_logprobs", "sequential", "round_size",
                              "stop_rule", "epsilon_threshold")
    assert {k: v for k, v in settings.ASKED_SINCE.items() if v is not None} == {"top_logprobs": 0,
                                                                                "sequential": False}


def test_the_recorded_config_leaves_out_paths_display_and_budgets_that_may_change():
    recorded = CollectOptions(db_path="a.db", teacher="t", suspect="s", controls=("c",), new_run=True).recorded()
    assert set(recorded) == set(settings.named("collect")) - {"db_path", "quiet", "new_run", "max_cost"}
    assert recorded["controls"] == ["c"]


def test_every_run_option_but_config_and_new_run_has_an_audit_toml_key(tmp_path):
    run = {p.name for p in cli.commands["run"].params} - {"help"}
    assert run == set(settings.BY_NAME)
    assert set(settings.CONFIG_KEYS.values()) == run - {"config", "new_run"}
    path = tmp_path / "audit.toml"
    path.write_text("".join(f"{key} = 1\n" for key in settings.CONFIG_KEYS if key != "controls"))
    assert set(load_config(path)) == set(settings.CONFIG_KEYS.values()) - {"controls"}


def test_the_analysis_settings_are_the_analyze_stage_and_ignore_the_judge_when_it_is_off():
    on = settings.analysis_settings(judge="j", use_judge=True, judge_probes=5, confidence=0.9)
    assert tuple(on) == settings.named("analyze")
    off = settings.analysis_settings(judge="j", use_judge=False, judge_probes=5, confidence=0.9)
    assert off == settings.analysis_settings(judge=None, use_judge=False, judge_probes=None, confidence=0.9)


def test_a_resume_is_refused_naming_the_flag_of_the_first_asked_difference():
    recorded = {**CollectOptions(db_path="a.db", teacher="t", suspect="s").recorded(), "controls": ["c"]}
    del recorded["top_logprobs"]  # recorded before the setting existed: collected without top-k
    wanted = CollectOptions(db_path="a.db", teacher="t", suspect="s").recorded()
    assert settings.first_asked_difference(recorded, wanted).flag == "--control"
    assert settings.first_asked_difference({**recorded, "controls": []}, wanted) is None
