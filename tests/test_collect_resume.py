"""A collection killed with SIGKILL at any point resumes with exact row counts."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

N_PROBES = 24
MODELS = 3  # teacher, suspect, one control


def write_suite(path):
    categories = ["code", "factual", "creative"]
    with path.open("w") as f:
        for i in range(N_PROBES):
            f.write(json.dumps({"text": f"Question number {i}: say something about {i * 7}.",
                                "category": categories[i % 3]}) + "\n")


def collect_cmd(db, suite, model_dir):
    spec = f"hf:{model_dir}"
    return [sys.executable, "-m", "audit", "collect", "--db", str(db), "--teacher", spec, "--suspect", spec,
            "--control", spec, "--suite", str(suite), "--batch-size", "1", "--max-new-tokens", "24",
            "--device", "cpu", "--quiet"]


def count(db, sql):
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def wait_for_rows(db, at_least, timeout=120):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if db.exists():
            try:
                if count(db, "select count(*) from responses") >= at_least:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"collection did not reach {at_least} responses in {timeout} s")


def test_kill_minus_nine_then_resume_gives_exact_counts(tmp_path, tiny_llama_dir):
    db, suite = tmp_path / "audit.db", tmp_path / "suite.jsonl"
    write_suite(suite)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for kill_after in (5, N_PROBES + 7):  # once inside the teacher, once inside the suspect
        proc = subprocess.Popen(collect_cmd(db, suite, tiny_llama_dir), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_rows(db, kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = count(db, "select count(*) from responses")
        assert kill_after <= done < N_PROBES * MODELS
    finished = subprocess.run(collect_cmd(db, suite, tiny_llama_dir), env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert "collection complete" in finished.stdout
    assert count(db, "select count(*) from queries") == N_PROBES * MODELS
    assert count(db, "select count(*) from responses") == N_PROBES * MODELS
    assert count(db, "select count(*) from (select distinct model_id, probe_id, sample from queries)") == \
        N_PROBES * MODELS
    assert count(db, "select count(*) from selections") == N_PROBES
    assert count(db, "select count(*) from models") == MODELS
    assert count(db, "select max(attempts) from queries") == 1
    assert count(db, "select status from audits") == "collected"


def test_a_bad_spec_fails_before_any_work(tmp_path, tiny_llama_dir):
    db, suite = tmp_path / "audit.db", tmp_path / "suite.jsonl"
    write_suite(suite)
    cmd = collect_cmd(db, suite, tiny_llama_dir)
    cmd[cmd.index("--control") + 1] = f"hf:{tmp_path / 'no-such-model'}"
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no-such-model" in result.stderr
    assert "Traceback" not in result.stderr
    assert not db.exists() or count(db, "select count(*) from responses") == 0


@pytest.mark.parametrize("budget", [0.0])
def test_max_seconds_stops_and_says_how_to_resume(tmp_path, tiny_llama_dir, budget):
    db, suite = tmp_path / "audit.db", tmp_path / "suite.jsonl"
    write_suite(suite)
    cmd = collect_cmd(db, suite, tiny_llama_dir) + ["--max-seconds", str(budget)]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "run the same command again to resume" in result.stdout
    assert count(db, "select status from audits") == "collecting"


def with_option(cmd, flag, value):
    """``cmd`` with ``flag`` set to ``value`` (replaced where it is given, else added)."""
    cmd = list(cmd)
    if flag in cmd:
        cmd[cmd.index(flag) + 1] = value
    else:
        cmd += [flag, value]
    return cmd


@pytest.fixture
def started(tmp_path, tiny_llama_dir):
    """A collection that selected its probes and stopped at once (--max-seconds 0): the CLI arguments that made it."""
    from click.testing import CliRunner

    from audit.cli import cli

    db, suite = tmp_path / "audit.db", tmp_path / "suite.jsonl"
    write_suite(suite)
    args = with_option(collect_cmd(db, suite, tiny_llama_dir)[3:], "--max-seconds", "0")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output

    def again(*args_now):
        return CliRunner().invoke(cli, list(args_now))

    return db, args, again


@pytest.mark.parametrize("flag, value, difference", [
    ("--seed", "1", "--seed 0, not 1"),
    ("--temperature", "0.7", "--temperature 0.0, not 0.7"),
    ("--samples", "2", "--samples 1, not 2"),
    ("--max-new-tokens", "32", "--max-new-tokens 24, not 32"),
    ("--probes", "12", "--probes (not given), not 12"),
    ("--queries", "12", "--probes (not given), not 12"),  # its old name still works, and the error names the new one
    ("--top-logprobs", "5", "--top-logprobs 0, not 5"),
    ("--control", "gemma3-270m", None),
    ("--suite", "other.jsonl", None),
])
def test_a_resume_with_other_settings_is_refused_naming_the_first_difference(started, tiny_llama_dir, flag, value,
                                                                               difference):
    db, args, again = started
    if flag == "--suite":
        value = str(db.parent / value)
        write_suite(db.parent / value)
    difference = difference or f"{flag} {args[args.index(flag) + 1]}, not {value}"
    before = db.read_bytes()
    result = again(*with_option(args, flag, value))
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: {db} was collected with {difference}: use the same settings to resume, "
                                     "--new-run to start over in this file, or another --db")
    assert db.read_bytes() == before


def test_a_resume_refuses_a_suite_file_whose_probes_changed(started):
    db, args, again = started
    suite = args[args.index("--suite") + 1]
    with open(suite, "a") as f:
        f.write(json.dumps({"text": "A probe added since.", "category": "code"}) + "\n")
    result = again(*args)
    assert result.exit_code == 1 and f"was collected with other probes of --suite {suite}" in result.output


def test_speed_and_display_settings_may_change_on_resume(started):
    db, args, again = started
    changed = with_option(with_option(with_option(args, "--batch-size", "4"), "--concurrency", "2"), "--dtype",
                          "float32")
    result = again(*[a for a in changed if a != "--quiet"])
    assert result.exit_code == 0, result.output


def test_new_run_keeps_the_earlier_audit_aside_and_starts_over(started):
    db, args, again = started
    for n in (1, 2):
        result = again(*with_option(args, "--seed", str(n)), "--new-run")
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[0] == f"started over: the earlier audit is kept as {db}.{n}"
    seeds = {path.name: count(path, "select seed from audits") for path in (db, db.parent / "audit.db.1",
                                                                            db.parent / "audit.db.2")}
    assert seeds == {"audit.db": 2, "audit.db.1": 0, "audit.db.2": 1}


def test_collect_with_top_logprobs_records_a_verified_blob_for_every_answer(tmp_path, tiny_llama_dir):
    from click.testing import CliRunner

    from audit.cli import cli
    from audit.store import Store
    from audit.topk import TopK

    db, suite = tmp_path / "audit.db", tmp_path / "suite.jsonl"
    write_suite(suite)
    args = with_option(collect_cmd(db, suite, tiny_llama_dir)[3:], "--probes", "6")
    args = with_option(with_option(args, "--batch-size", "4"), "--max-new-tokens", "5")
    result = CliRunner().invoke(cli, [*args, "--top-logprobs", "3"])
    assert result.exit_code == 0 and "collection complete" in result.output, result.output
    with Store.open(db) as store:
        for model in store.models():
            blobs = store.top_distributions(model["id"])
            assert len(blobs) == 6 and all(len(row) == 3 for b in blobs.values() for row in TopK.unpack(b).ids)
        assert store.verify_transcripts() == []
