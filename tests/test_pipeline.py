"""`run` and `demo`: the stages in order over one database, skipped when current, from flags or audit.toml."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit import analyze, pipeline
from audit.cli import cli
from audit.collect import choose_probes
from audit.distill import COMPLETE_MARKER
from audit.errors import AuditError
from audit.pipeline import (check_training_probes, demo_options, load_config, run_options, run_pipeline)
from audit.store import Store
from helpers_adversaries import HashingEmbedder
from table_pin import check_pin

CATEGORIES = ("facts", "code", "poems")


def write_suite(path: Path, per_category: int = 6) -> Path:
    lines = [json.dumps({"text": f"Question {i} about {c}: tell me one thing.", "category": c})
             for c in CATEGORIES for i in range(per_category)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def hashing_embedder(monkeypatch):
    """MiniLM replaced by a bag-of-words hash: the pipeline test checks the plumbing, not embeddings."""
    monkeypatch.setattr(analyze, "Embedder", HashingEmbedder)


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    return write_suite(tmp_path_factory.mktemp("suite") / "suite.jsonl")


def tiny_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite_file, **overrides):
    params = dict(db_path=tmp_path / "audit.db", out_dir=tmp_path / "report", teacher=f"hf:{tiny_llama_dir}",
                  suspect=f"peft:hf:{tiny_llama_dir}+{tiny_lora_dir}", controls=[f"hf:{tiny_gemma3_dir}"],
                  suite=str(suite_file), queries=12, max_new_tokens=6, batch_size=4, device="cpu", quiet=True,
                  no_pdf=True)
    params.update(overrides)
    return run_options(**params)


def stage_lines(summary: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in summary.splitlines())


# ---------------------------------------------------------------------------
# Config files
# ---------------------------------------------------------------------------


def test_a_config_file_uses_the_flags_names(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text('db = "a.db"\nout = "rep"\nteacher = "t"\nsuspect = "s"\ncontrols = ["c1", "c2"]\n'
                    "probes = 10\nno_judge = true\n")
    assert load_config(path) == {"db_path": "a.db", "out_dir": "rep", "teacher": "t", "suspect": "s",
                                 "controls": ["c1", "c2"], "queries": 10, "no_judge": True}


@pytest.mark.parametrize("text, message", [
    ('teacher = "t"\nqueris = 3\n', "unknown key 'queris'"),
    ('teacher = "t\n', "not valid TOML"),
    ('controls = "gemma3-270m"\n', "controls must be a list"),
])
def test_a_bad_config_is_one_line(tmp_path, text, message):
    path = tmp_path / "audit.toml"
    path.write_text(text)
    with pytest.raises(AuditError, match=message) as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_flags_win_over_the_config_file(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(pipeline, "run_pipeline", lambda options: seen.setdefault("options", options) and "ok")
    config = tmp_path / "audit.toml"
    config.write_text(f'db = "{tmp_path / "a.db"}"\nout = "{tmp_path / "rep"}"\nteacher = "from-file"\n'
                      'suspect = "suspect-file"\ncontrols = ["c1"]\nqueries = 10\n')
    result = CliRunner().invoke(cli, ["run", "--teacher", "from-flag", "--probes", "3", "--config", str(config)])
    assert result.exit_code == 0, result.output
    options = seen["options"]
    assert (options.collect.teacher, options.collect.suspect, options.collect.controls) == (
        "from-flag", "suspect-file", ("c1",))
    assert options.collect.queries == 3 and options.out_dir == tmp_path / "rep"


def test_run_refuses_an_out_dir_holding_the_database_before_collecting(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--db", str(tmp_path / "audit.db"), "--out", str(tmp_path),
                                      "--teacher", "hf:/no/such/model", "--suspect", "hf:/no/such/model"])
    assert result.exit_code == 1
    assert f"error: {tmp_path}: holds the audit database" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_run_without_a_model_says_which_flag_is_missing(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--db", str(tmp_path / "a.db"), "--out", str(tmp_path / "r"),
                                      "--teacher", "t"])
    assert result.exit_code == 2 and "Missing option '--suspect'" in result.output


# ---------------------------------------------------------------------------
# The whole pipeline on tiny models
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite_file):
    """One whole run (collect, analyze, report) on tiny models; tests work on copies of its folder."""
    folder = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analyze, "Embedder", HashingEmbedder)
        summary = run_pipeline(tiny_options(folder, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite_file))
    return folder, stage_lines(summary)


@pytest.fixture
def rerun(finished, tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite_file, hashing_embedder):
    """Run the pipeline again, with changed settings, over a copy of the finished audit."""
    folder = tmp_path / "audit"
    shutil.copytree(finished[0], folder)

    def again(**overrides):
        options = tiny_options(folder, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite_file, **overrides)
        return stage_lines(run_pipeline(options))

    return folder, again


def test_the_first_run_does_every_stage(finished):
    folder, first = finished
    assert "skipped" not in " ".join(first.values())
    assert first["open"] == str(folder / "report" / "report.html")
    assert {"report.html", "manifest.json", "audit.db"} <= {p.name for p in (folder / "report").iterdir()}
    with Store.open(folder / "audit.db") as store:
        rows = store.results(adversary="similarity", comparison="teacher-vs-suspect", category="all",
                             split="all")
    assert rows and rows[0].n == 12 and rows[0].ci_low <= rows[0].estimate <= rows[0].ci_high


def test_the_tiny_pipelines_numbers_are_pinned(finished):
    """Every derived number of a whole tiny run, to the ninth decimal: refactors must not move them."""
    check_pin(finished[0] / "audit.db", "tiny_pipeline_table")


def test_a_second_run_skips_every_stage_and_redoes_only_what_changed(rerun):
    folder, again = rerun
    second = again()
    assert all(second[stage].endswith("(skipped)") for stage in pipeline.STAGES), second
    (folder / "report" / "report.html").unlink()
    redone = again()
    assert redone["collect"].endswith("(skipped)") and redone["analyze"].endswith("(skipped)")
    assert not redone["report"].endswith("(skipped)") and (folder / "report" / "report.html").exists()
    stricter = again(confidence=0.9)
    assert stricter["collect"].endswith("(skipped)")
    assert not stricter["analyze"].endswith("(skipped)") and not stricter["report"].endswith("(skipped)")


def test_run_names_its_teacher_and_judge_so_every_adversary_runs(finished):
    folder, _ = finished
    with Store.open(folder / "audit.db") as store:
        adversaries = {r.adversary for r in store.results(comparison="teacher-vs-suspect")}
    assert {"teacher-likelihood", "judge", "judge-unfiltered", "discriminator-paired"} <= adversaries


def test_an_analysis_without_the_models_run_names_is_redone_by_run(rerun):
    from audit.analyze import run_analysis

    folder, again = rerun
    summary = run_analysis(folder / "audit.db", quiet=True)  # `analyze` with neither --teacher nor --judge
    assert "teacher-likelihood: skipped (no --teacher given" in summary and "judge: skipped (no --judge" in summary
    redone = again()
    assert redone["collect"].endswith("(skipped)") and not redone["analyze"].endswith("(skipped)")
    assert again()["analyze"].endswith("(skipped)")


def test_the_analysis_settings_are_compared_as_recorded_data(rerun):
    folder, again = rerun
    off = again(no_judge=True)
    assert not off["analyze"].endswith("(skipped)")
    assert again(no_judge=True, judge_probes=4)["analyze"].endswith("(skipped)")  # no judge: its probes do not matter
    assert not again(judge_probes=4)["analyze"].endswith("(skipped)")
    with Store.open(folder / "audit.db") as store:
        [analysis] = [c["details"] for c in store.costs() if c["subject"] == "analysis"]
    assert analysis["settings"] == {"judge": None, "no_judge": False, "judge_probes": 4, "confidence": 0.95}


def test_an_analysis_recorded_without_its_settings_is_redone(rerun):
    folder, again = rerun
    with Store.open(folder / "audit.db") as store:  # as an analysis of an older version recorded it
        store.db.execute("update costs set details_json = json_remove(details_json, '$.settings') "
                         "where subject = 'analysis'")
        store.db.conn.commit()
    redone = again()
    assert redone["collect"].endswith("(skipped)") and not redone["analyze"].endswith("(skipped)")
    assert again()["analyze"].endswith("(skipped)")


def test_run_refuses_to_resume_with_other_settings(rerun):
    folder, again = rerun
    with pytest.raises(AuditError, match=f"^{folder / 'audit.db'} was collected with --seed 0, not 1: use the same "
                                         "settings to resume, --new-run to start over in this file, or another --db$"):
        again(seed=1)
    assert again(batch_size=2, max_seconds=600)["collect"].endswith("(skipped)")  # speed settings may change


def test_a_collection_stopped_by_its_time_budget_stops_the_run(rerun):
    folder, again = rerun
    stopped = again(queries=15, max_seconds=0, new_run=True)
    assert stopped["collect"].startswith(f"started over: the earlier audit is kept as {folder / 'audit.db.1'}; ")
    assert stopped["stopped"] == "45 queries are not asked yet; run the same command again to resume"
    with Store.open(folder / "audit.db.1", create=False) as kept:
        assert kept.results()  # the finished audit, whole under its new name
    assert "analyze" not in stopped


def test_a_signed_report_is_re_signed_only_when_the_key_changes(rerun):
    from audit.report.signing import keygen, verify_report

    folder, again = rerun
    keygen(folder / "k1")
    keygen(folder / "k2")
    assert not again(sign_key=folder / "k1")["report"].endswith("(skipped)")
    verify_report(folder / "report", public_key=folder / "k1.pub")
    assert again(sign_key=folder / "k1")["report"].endswith("(skipped)")
    assert not again(sign_key=folder / "k2")["report"].endswith("(skipped)")
    verify_report(folder / "report", public_key=folder / "k2.pub")


# ---------------------------------------------------------------------------
# Training probes are never evaluation probes
# ---------------------------------------------------------------------------


def adapter_trained_on(tmp_path, tiny_lora_dir, probe_ids) -> Path:
    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_lora_dir, adapter)
    (adapter / COMPLETE_MARKER).write_text(json.dumps({"training_probes": probe_ids}))
    return adapter


def test_an_adapter_is_never_evaluated_on_its_training_probes(tmp_path, tiny_llama_dir, tiny_gemma3_dir,
                                                              tiny_lora_dir, suite_file):
    options = tiny_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite_file)
    _, probes, _ = choose_probes(options.collect)
    adapter = adapter_trained_on(tmp_path, tiny_lora_dir, [probes[3].id, "elsewhere"])
    trained = tiny_options(tmp_path, tiny_llama_dir, tiny_gemma3_dir, tiny_lora_dir, suite_file,
                           suspect=f"peft:hf:{tiny_llama_dir}+{adapter}")
    with pytest.raises(AuditError, match=f"1 of the 12 evaluation probes \\(first {probes[3].id}\\) are training"):
        run_pipeline(trained)
    assert not (tmp_path / "audit.db").exists()


def test_the_demo_adapter_ships_in_the_package_and_never_saw_the_demo_probes(tmp_path):
    options = demo_options(tmp_path)
    adapter = pipeline.demo_adapter_dir()
    marker = json.loads((adapter / COMPLETE_MARKER).read_text())
    assert options.collect.suspect == f"peft:{marker['student']}+{adapter}"
    assert marker["teacher"] == options.collect.teacher and options.collect.controls == (marker["student"],)
    assert (adapter / "adapter_model.safetensors").stat().st_size < 8_000_000
    assert len(marker["training_probes"]) >= 300
    check_training_probes(options.collect)
    _, probes, _ = choose_probes(options.collect)
    assert not {p.id for p in probes} & set(marker["training_probes"])
    assert options.collect.db_path == tmp_path / "audit.db" and options.out_dir == tmp_path / "report"


@pytest.mark.parametrize("name", ["audit.toml", "vllm-audit.toml"])
def test_the_example_configs_name_valid_settings_and_specs(name):
    from audit.models import parse_spec

    options = run_options(**load_config(Path(__file__).parent.parent / "examples" / name))
    for spec in (options.collect.teacher, options.collect.suspect, *options.collect.controls,
                 *([options.judge] if options.judge else [])):
        parse_spec(spec)
