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
