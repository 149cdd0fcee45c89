"""Logit distillation: the divergence it minimises, that it learns, and what it refuses."""

from __future__ import annotations

import json
import math
import re

import pytest
from click.testing import CliRunner

from audit.cli import cli
from audit.distill import COMPLETE_MARKER, kd_loss, run_distill
from audit.errors import AuditError
from audit.store import Store
from audit.topk import TopK
from test_distill import options, record_teacher


def test_kd_loss_is_the_forward_divergence_over_the_top_k_and_one_tail_bucket():
    import torch

    logits = torch.tensor([[1.0, 0.0, 2.0, -1.0], [0.5, 0.5, 0.0, 1.0]])
    ids = torch.tensor([[0, 2], [3, -1]])
    probs = torch.tensor([[0.5, 0.3], [0.9, 0.0]])
    q = [[math.exp(v) / sum(math.exp(w) for w in row) for v in row] for row in logits.tolist()]
    first = 0.5 * math.log(0.5 / q[0][0]) + 0.3 * math.log(0.3 / q[0][2]) + 0.2 * math.log(0.2 / (q[0][1] + q[0][3]))
    second = 0.9 * math.log(0.9 / q[1][3]) + 0.1 * math.log(0.1 / (q[1][0] + q[1][1] + q[1][2]))
    loss = kd_loss(torch.log_softmax(logits, -1), ids, probs)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-5)


def test_kd_loss_is_zero_where_the_student_already_matches_the_teacher():
    import torch

    logprobs = torch.log_softmax(torch.tensor([[0.3, -1.0, 2.0, 0.1, 0.0]]), -1)
    ids = torch.tensor([[2, 0]])
    assert kd_loss(logprobs, ids, logprobs.exp().gather(-1, ids)).item() == pytest.approx(0.0, abs=1e-6)


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"Question {i} on {c}: what is {i} plus one?", "category": c})
                              for i in range(8) for c in ("sums", "words")) + "\n")
    return path


@pytest.fixture(scope="module")
def sharp_teacher_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny llama with its output layer scaled up: the same tokenizer, but peaked next-token distributions
    (a random tiny model's are nearly uniform, leaving KD almost nothing to learn)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with torch.no_grad():
        model.lm_head.weight.mul_(60.0)
    directory = tmp_path_factory.mktemp("sharp-teacher")
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(directory)
    return directory


def kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file, **kw):
    """A teacher and a student of one tokenizer (like the bundled adapter on gemma3-270m and its base)."""
    base = dict(teacher=f"hf:{sharp_teacher_dir}", train_queries=6, max_new_tokens=6,
                top_logprobs=4, suite=str(suite_file), objective="kd", epochs=4, batch_size=3,
                target_modules=("lm_head",), learning_rate=2e-2)  # a random tiny model learns sharpness fastest there
    return options(tmp_path, tiny_llama_dir, **{**base, **kw})


def test_kd_on_recorded_top_k_learns_and_records_its_exposure(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file):
    summary = run_distill(kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file))
    assert "kd on exposure top-k:4" in summary
    marker = json.loads((tmp_path / "adapter" / COMPLETE_MARKER).read_text())
    assert marker["config"]["objective"] == "kd" and marker["config"]["exposure"] == {"policy": "top-k:4", "seed": 0}
    with Store.open(tmp_path / "train.db") as store:
        (run,) = store.distill_runs()
        log = store.distill_log(run["id"])
    assert json.loads(run["config_json"])["exposure"]["policy"] == "top-k:4" and run["status"] == "complete"
    assert log[0]["loss"] > 1.0 and log[-1]["loss"] < 0.8 * log[0]["loss"], [r["loss"] for r in log]


def test_sft_plus_kd_adds_the_cross_entropy_to_the_divergence(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file):
    run_distill(kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file, epochs=1))
    both = kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file, epochs=1, objective="sft+kd",
                      out_dir=tmp_path / "both")
    run_distill(both)
    with Store.open(tmp_path / "train.db") as store:
        kd_run, both_run = store.distill_runs()
        first_kd, first_both = store.distill_log(kd_run["id"])[0], store.distill_log(both_run["id"])[0]
    assert first_both["loss"] > first_kd["loss"] + 0.5  # the same first batch; cross-entropy is nats above it


def test_an_exposure_policy_is_applied_before_training(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file):
    summary = run_distill(kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file, epochs=1,
                                     exposure="top-k:2+noise:0.3", seed=3))
    assert "kd on exposure top-k:2+noise:0.3" in summary
    marker = json.loads((tmp_path / "adapter" / COMPLETE_MARKER).read_text())
    assert marker["config"]["exposure"] == {"policy": "top-k:2+noise:0.3", "seed": 3}
    with pytest.raises(AuditError, match="recorded with only 4 tokens per position"):
        run_distill(kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file, exposure="top-k:8",
                               out_dir=tmp_path / "more"))
    assert not (tmp_path / "more").exists()


def test_a_learned_exposure_is_fitted_on_the_teacher_s_whole_record_and_recorded_with_the_run(
        tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file):
    run_distill(kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file, epochs=1, train_queries=6))
    summary = run_distill(kd_options(tmp_path, tiny_llama_dir, sharp_teacher_dir, suite_file, epochs=1,
                                     train_queries=3, exposure="top-k:4+purify:0.5", out_dir=tmp_path / "purified"))
    assert "kd on exposure top-k:4+purify:0.5, 3 examples" in summary
    fitted = json.loads((tmp_path / "purified" / COMPLETE_MARKER).read_text())["config"]["exposure"]["fitted"]
    assert fitted["on"]["responses"] == 6  # every training answer the teacher recorded, not only these 3
    (step,) = fitted["steps"]
    assert step["step"] == "purify:0.5" and step["cmi_after"] < step["cmi_before"] and len(step["theta"]) == 3


def record_with_distributions(db_path, tokenizer: str | None):
    """A teacher's training answers with top-k blobs, its description naming ``tokenizer``."""
    probe_ids = record_teacher(db_path, n=2)
    with Store.open(db_path) as store:
        model = store.model("teacher")
        store.add_model(name="teacher", role="teacher", spec=model["spec"],
                        description={} if tokenizer is None else {"tokenizer": tokenizer})
        top = TopK(tokens=[["a"]], logprobs=[[-0.1]], ids=[[7]], chosen_tokens=["a"], chosen_ids=[7]).pack()
        store.record_responses(model["id"], [
            {"probe_id": pid, "sample": 0, "params": {}, "text": "a", "tokens_out": 1, "finish_reason": "length",
             "top_logprobs": top} for pid in probe_ids], purpose="train")


@pytest.mark.parametrize("tokenizer, message", [
    ("f" * 64, "have different tokenizers (vocabulary ffffffffffff vs "),
    (None, "has no tokenizer fingerprint"),
])
def test_kd_across_tokenizers_is_refused_in_one_line(tmp_path, tiny_llama_dir, tokenizer, message):
    record_with_distributions(tmp_path / "train.db", tokenizer)
    with pytest.raises(AuditError, match=re.escape(message)) as caught:
        run_distill(options(tmp_path, tiny_llama_dir, objective="kd"))
    assert "\n" not in str(caught.value) and not (tmp_path / "adapter").exists()
    with Store.open(tmp_path / "train.db") as store:
        assert store.distill_runs() == []


def test_kd_without_recorded_distributions_is_refused_in_one_line(tmp_path, tiny_llama_dir):
    record_teacher(tmp_path / "train.db")
    with pytest.raises(AuditError, match="8 of 8 teacher training responses have no recorded top-k distributions"):
        run_distill(options(tmp_path, tiny_llama_dir, objective="kd"))


@pytest.mark.parametrize("flags, message", [
    (["--objective", "kd", "--exposure", "logits:3"], "error: unknown exposure policy step 'logits:3'"),
    (["--exposure", "top-k:5"], "error: --exposure top-k:5: --objective sft trains on the teacher's text alone"),
    (["--top-logprobs", "5"], "error: --top-logprobs 5: the teacher's distributions are recorded as it answers"),
])
def test_a_bad_exposure_is_one_line(tmp_path, tiny_llama_dir, flags, message):
    record_teacher(tmp_path / "train.db")
    record_with_distributions(tmp_path / "train.db", None)
    result = CliRunner().invoke(cli, ["distill", "--teacher", "teacher-spec", "--student", f"hf:{tiny_llama_dir}",
                                      "--db", str(tmp_path / "train.db"), "--out", str(tmp_path / "adapter"), *flags])
    assert result.exit_code == 1 and result.output.startswith(message) and result.output.count("\n") == 1


def test_the_cli_records_the_teacher_s_distributions_and_distils_on_an_exposure(tmp_path, tiny_llama_dir,
                                                                                sharp_teacher_dir, suite_file):
    result = CliRunner().invoke(cli, [
        "distill", "--teacher", f"hf:{sharp_teacher_dir}", "--student", f"hf:{tiny_llama_dir}",
        "--db", str(tmp_path / "train.db"), "--out", str(tmp_path / "adapter"), "--suite", str(suite_file),
        "--train-probes", "4", "--max-new-tokens", "4", "--top-logprobs", "3", "--objective", "sft+kd",
        "--exposure", "top-k:2+round:2", "--epochs", "1", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "sft+kd on exposure top-k:2+round:2, 4 examples" in result.output
    with Store.open(tmp_path / "train.db") as store:
        blobs = store.top_distributions(store.model("teacher")["id"], purpose="train")
        assert len(blobs) == 4 and all(len(row) == 3 for b in blobs.values() for row in TopK.unpack(b).ids)


def test_kd_examples_start_with_the_generation_prompt_and_padding_changes_no_loss(tiny_gemma3_dir):
    """Guards what the degenerate 200-example leakage students were suspected of (issue 13; it was none of it):
    a KD example's prompt is exactly what generation feeds, and a right-padded batch's loss is the
    token-weighted mean of its examples' losses (longer than the sliding window, one answer ending in EOS)."""
    import numpy as np
    import torch

    from audit.distill.examples import build_kd_examples, make_batch
    from audit.distill.loss import objective_loss
    from audit.exposure import Exposed
    from audit.models import load_model

    backend = load_model(f"hf:{tiny_gemma3_dir}", device="cpu")
    model, tokenizer = backend.model, backend.tokenizer
    prompts = ["Question one: what is the capital of France?", "Two?", "Question three, a longer one: name a river."]
    answers = [[5, 6, 7, tokenizer.eos_token_id], [8, 9, 10, 11, 12, 13, 14, 15, 16, 17], [18, 19]]
    rows = [{"query_id": f"q{i}", "probe_id": f"p{i}", "probe_text": p} for i, p in enumerate(prompts)]
    targets = {f"q{i}": Exposed(ids=np.array(a)[:, None], probs=np.ones((len(a), 1)), chosen=np.array(a))
               for i, a in enumerate(answers)}
    examples = build_kd_examples(tokenizer, rows, targets, max_length=64)
    for example, prompt, answer in zip(examples, prompts, answers):
        fed = backend.prompt_ids(prompt)
        assert example["input_ids"] == fed + answer
        assert example["labels"] == [-100] * len(fed) + answer

    def loss(chosen):
        ids, labels, mask, first, kd = make_batch(chosen, tokenizer.pad_token_id)
        with torch.no_grad():
            return objective_loss(model, ids, labels, mask, first, kd, "kd").item()

    weights = [len(a) for a in answers]
    alone = sum(loss([e]) * n for e, n in zip(examples, weights)) / sum(weights)
    assert loss(examples) == pytest.approx(alone, rel=1e-5)
