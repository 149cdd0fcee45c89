"""LoRA distillation on tiny models: what it writes, what it refuses, and that it resumes exactly."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit.cli import cli
from audit.distill import COMPLETE_MARKER, DistillOptions, build_examples, run_distill
from audit.distill import train as distill_train  # the loop: patched where it looks its helpers up
from audit.errors import AuditError, StoreError
from audit.probes.types import Probe, Suite
from audit.store import Store

ANSWERS = [
    "The teacher answers every question with care.",
    "Paris is the capital of France.",
    "def add(a, b): return a + b",
    "One two three four five six seven.",
]


def record_teacher(db_path, n=8, teacher="teacher-spec", cut=()):
    """A database whose teacher answered n training probes (probe i's answer is cut at the limit when i in cut)."""
    store = Store.open(db_path)
    probes = [Probe(id=f"train{i}", category="c", subcategory="s", text=f"Question {i}: what is the capital?")
              for i in range(n)]
    store.ensure_audit({"teacher": teacher}, suite_name="t", suite_version="1", suite_hash="h", seed=0)
    store.add_suite(Suite(name="t", version="1", hash="h", probes=probes))
    store.select_probes([p.id for p in probes], purpose="train")
    model_id = store.add_model(name="teacher", role="teacher", spec=teacher, description={})
    store.record_responses(model_id, [
        {"probe_id": p.id, "sample": 0, "params": {}, "text": ANSWERS[i % len(ANSWERS)], "tokens_in": 5,
         "tokens_out": 9, "finish_reason": "length" if i in cut else "stop", "latency_s": 0.1}
        for i, p in enumerate(probes)], purpose="train")
    store.close()
    return [p.id for p in probes]


def options(tmp_path, student_dir, **kw):
    base = dict(teacher="teacher-spec", student=f"hf:{student_dir}", db_path=tmp_path / "train.db",
                out_dir=tmp_path / "adapter", epochs=2, batch_size=2, checkpoint_every=3, learning_rate=5e-3,
                rank=4, alpha=8, device="cpu", quiet=True)
    base.update(kw)
    return DistillOptions(**base)


def adapter_weights(directory):
    from safetensors.torch import load_file

    return load_file(str(directory / "adapter_model.safetensors"))


def test_distill_writes_a_complete_adapter_and_logs_every_step(tmp_path, tiny_llama_dir):
    probe_ids = record_teacher(tmp_path / "train.db")
    summary = run_distill(options(tmp_path, tiny_llama_dir))
    out = tmp_path / "adapter"
    assert f"peft:hf:{tiny_llama_dir}+{out}" in summary
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", COMPLETE_MARKER, "training_log.csv",
            "README.md"} <= names
    assert ".checkpoint" not in names
    marker = json.loads((out / COMPLETE_MARKER).read_text())
    assert marker["training_probes"] == sorted(probe_ids)
    assert marker["steps"] == 8 and marker["examples"] == 8 and marker["chat_format"] == "template"
    assert marker["config"]["rank"] == 4
    with Store.open(tmp_path / "train.db") as store:
        (run,) = store.distill_runs()
        log = store.distill_log(run["id"])
    assert run["status"] == "complete"
    assert [r["step"] for r in log] == list(range(1, 9))
    assert all(r["loss"] > 0 and r["tokens"] > 0 and r["tokens_per_s"] > 0 for r in log)
    assert log[-1]["loss"] < log[0]["loss"]
    assert len((out / "training_log.csv").read_text().splitlines()) == 9


def test_the_adapter_loads_as_a_peft_spec_and_changes_the_answers(tmp_path, tiny_llama_dir):
    from audit.models import load_model
    from audit.models.base import GenParams

    record_teacher(tmp_path / "train.db")
    run_distill(options(tmp_path, tiny_llama_dir, learning_rate=5e-2))
    params = GenParams(max_new_tokens=6)
    base = load_model(f"hf:{tiny_llama_dir}", device="cpu").generate(["Question 1"], params)
    distilled = load_model(f"peft:hf:{tiny_llama_dir}+{tmp_path / 'adapter'}", device="cpu")
    student = distilled.generate(["Question 1"], params)
    assert student[0].error is None and student[0].text != base[0].text


def test_an_interrupted_run_resumes_from_its_checkpoint_and_ends_where_a_straight_run_ends(
        tmp_path, tiny_llama_dir, monkeypatch):
    record_teacher(tmp_path / "train.db")
    straight = options(tmp_path, tiny_llama_dir, out_dir=tmp_path / "straight")
    run_distill(straight)

    real_save, saves = distill_train.save_checkpoint, []

    def save_then_die(out, state):
        real_save(out, state)
        saves.append(state["step"])
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(distill_train, "save_checkpoint", save_then_die)
    resumed = options(tmp_path, tiny_llama_dir, out_dir=tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        run_distill(resumed)
    assert not (tmp_path / "resumed" / COMPLETE_MARKER).exists()
    assert (tmp_path / "resumed" / ".checkpoint" / "state.pt").exists()
    monkeypatch.setattr(distill_train, "save_checkpoint", real_save)

    assert "resumed at step 6" in run_distill(resumed)
    a, b = adapter_weights(tmp_path / "straight"), adapter_weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-5, key


def test_a_student_without_chat_template_trains_on_plain_prompts_and_says_so(tmp_path, tiny_gemma3_dir, capsys):
    record_teacher(tmp_path / "train.db", n=4)
    run_distill(options(tmp_path, tiny_gemma3_dir, epochs=1))
    assert "has no chat template" in capsys.readouterr().err
    assert json.loads((tmp_path / "adapter" / COMPLETE_MARKER).read_text())["chat_format"] == "plain"


def test_examples_mask_the_prompt_and_close_only_finished_answers(tmp_path, tiny_llama_dir):
    from audit.models import load_hf

    _, tokenizer = load_hf(f"hf:{tiny_llama_dir}", device="cpu")
    rows = [{"probe_id": "a", "probe_text": "Question", "text": "Paris", "finish_reason": "stop"},
            {"probe_id": "b", "probe_text": "Question", "text": "Paris", "finish_reason": "length"}]
    finished, cut = build_examples(tokenizer, rows, max_length=64)
    prompt_len = finished["labels"].count(-100)
    assert prompt_len == cut["labels"].count(-100) > 0
    assert finished["input_ids"][:prompt_len] == cut["input_ids"][:prompt_len]
    assert tokenizer.decode(finished["input_ids"][prompt_len:]).endswith("<eos>")
    assert tokenizer.eos_token_id not in cut["input_ids"][prompt_len:]
    (short,) = build_examples(tokenizer, rows[:1], max_length=prompt_len + 1)
    assert len(short["input_ids"]) == prompt_len + 1


def test_a_database_without_teacher_training_responses_is_refused_in_one_line(tmp_path, tiny_llama_dir):
    Store.open(tmp_path / "train.db").close()
    with pytest.raises(AuditError, match="no teacher responses to training probes; pass --train-probes"):
        run_distill(options(tmp_path, tiny_llama_dir))
    assert not (tmp_path / "adapter").exists()


def test_a_different_teacher_than_recorded_is_refused(tmp_path, tiny_llama_dir):
    record_teacher(tmp_path / "train.db")
    with pytest.raises(AuditError, match="its teacher is 'teacher-spec', not 'other'"):
        run_distill(options(tmp_path, tiny_llama_dir, teacher="other"))


def test_an_existing_adapter_is_kept_without_overwrite_and_replaced_with_it(tmp_path, tiny_llama_dir):
    record_teacher(tmp_path / "train.db")
    run_distill(options(tmp_path, tiny_llama_dir, epochs=1))
    first = adapter_weights(tmp_path / "adapter")
    with pytest.raises(AuditError, match="already holds a trained adapter; pass --overwrite"):
        run_distill(options(tmp_path, tiny_llama_dir, epochs=1, seed=1))
    run_distill(options(tmp_path, tiny_llama_dir, epochs=1, seed=1, overwrite=True))
    second = adapter_weights(tmp_path / "adapter")
    assert any((first[k] - second[k]).abs().max().item() > 0 for k in first)
    assert json.loads((tmp_path / "adapter" / COMPLETE_MARKER).read_text())["config"]["seed"] == 1


def test_a_folder_that_is_not_an_adapter_is_never_touched_even_with_overwrite(tmp_path, tiny_llama_dir):
    record_teacher(tmp_path / "train.db")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "notes.txt").write_text("mine")
    with pytest.raises(AuditError, match="is not an adapter directory"):
        run_distill(options(tmp_path, tiny_llama_dir, overwrite=True))
    assert (tmp_path / "adapter" / "notes.txt").read_text() == "mine"


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, tiny_llama_dir, monkeypatch):
    record_teacher(tmp_path / "train.db")

    def die(out, state):
        raise KeyboardInterrupt

    real_save = distill_train.save_checkpoint
    monkeypatch.setattr(distill_train, "save_checkpoint", lambda out, state: (real_save(out, state), die(out, state)))
    with pytest.raises(KeyboardInterrupt):
        run_distill(options(tmp_path, tiny_llama_dir))
    monkeypatch.undo()
    with pytest.raises(AuditError, match="checkpoint of a different distillation"):
        run_distill(options(tmp_path, tiny_llama_dir, rank=2))


def test_out_of_memory_is_one_line_and_leaves_no_finished_adapter(tmp_path, tiny_llama_dir, monkeypatch):
    record_teacher(tmp_path / "train.db")

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(distill_train, "objective_loss", oom)
    with pytest.raises(AuditError, match="out of memory .* --batch-size 2, --max-length 256: lower either"):
        run_distill(options(tmp_path, tiny_llama_dir))
    assert not (tmp_path / "adapter" / COMPLETE_MARKER).exists()
    with Store.open(tmp_path / "train.db") as store:
        assert store.distill_runs()[0]["status"] == "interrupted"


def test_the_cli_prints_one_line_errors(tmp_path, tiny_llama_dir):
    Store.open(tmp_path / "train.db").close()
    result = CliRunner().invoke(cli, ["distill", "--teacher", "t", "--student", f"hf:{tiny_llama_dir}",
                                      "--db", str(tmp_path / "train.db"), "--out", str(tmp_path / "adapter")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")


def test_the_teacher_answers_a_training_split_that_no_evaluation_may_use(tmp_path, tiny_llama_dir):
    from audit.probes import load_suite

    suite_path = tmp_path / "suite.jsonl"
    lines = [json.dumps({"text": f"Question {i} on {c}: what is {i} plus one?", "category": c})
             for i in range(12) for c in ("sums", "words")]
    suite_path.write_text("\n".join(lines) + "\n")
    suite = load_suite(str(suite_path))
    teacher = f"hf:{tiny_llama_dir}"
    with Store.open(tmp_path / "train.db") as store:
        store.ensure_audit({"teacher": teacher, "suite": str(suite_path)}, suite_name=suite.name,
                           suite_version=suite.version, suite_hash=suite.hash, seed=0)
        store.add_suite(suite)
        evaluated = [p.id for p in suite.probes[:10]]
        store.select_probes(evaluated, purpose="eval")
    run_distill(options(tmp_path, tiny_llama_dir, teacher=teacher, train_queries=8, max_new_tokens=4, epochs=1))
    with Store.open(tmp_path / "train.db") as store:
        trained = [p["id"] for p in store.selected_probes("train")]
        answered = store.responses(store.model("teacher")["id"], purpose="train")
        assert len(trained) == 8 and not set(trained) & set(evaluated)
        assert {r["probe_id"] for r in answered} == set(trained)
        with pytest.raises(StoreError, match="never evaluates on training probes"):
            store.select_probes(trained[:1], purpose="eval")
    marker = json.loads((tmp_path / "adapter" / COMPLETE_MARKER).read_text())
    assert set(marker["training_probes"]) <= set(trained)
