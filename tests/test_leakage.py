"""`distill-audit leakage` on tiny models: the whole run, its signed report, resuming, and one-line refusals."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from click.testing import CliRunner

from audit import analyze, leakage
from audit.cli import cli
from audit.distill import COMPLETE_MARKER, DistillOptions, teacher_training_responses
from audit.leakage import parse_sizes, slug
from audit.report.signing import ENVELOPE, MANIFEST, load_private_key, sign_payload, statement_bytes
from audit.store import Store
from helpers_adversaries import HashingEmbedder
from test_distill_kd import sharp_teacher_dir  # noqa: F401  (the fixture: a peaked teacher of the tiny tokenizer)
from test_pipeline import write_suite

POLICIES = ("text", "top-k:3", "top-k:3+purify:0.5")


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    """The pipeline's suite, every other probe with a checkable reference (a tiny model rarely satisfies it)."""
    path = write_suite(tmp_path_factory.mktemp("suite") / "suite.jsonl", per_category=8)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for i, row in enumerate(rows[::2]):
        row["reference"] = {"type": "not_contains", "any": ["zebra"]} if i % 2 else {"type": "number", "value": 7}
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def arguments(folder, teacher, student, suite, *extra, policies=POLICIES, sizes="2,4"):
    return ["leakage", "--teacher", f"hf:{teacher}", "--student", f"hf:{student}",
            *[flag for p in policies for flag in ("--policy", p)], "--train-sizes", sizes,
            "--db", str(folder / "leak.db"), "--out", str(folder / "out"), "--suite", str(suite),
            "--eval-probes", "6", "--max-new-tokens", "5", "--top-logprobs", "3", "--device", "cpu", "--quiet",
            *extra]


def invoke(*args):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analyze, "Embedder", HashingEmbedder)
        return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, sharp_teacher_dir, tiny_llama_dir, suite_file):  # noqa: F811
    """One whole signed run: 3 policies x 2 sizes, 6 evaluation probes; tests read copies of its folder."""
    folder = tmp_path_factory.mktemp("leakage")
    keys = CliRunner().invoke(cli, ["keygen", "--out", str(folder / "signer")])
    assert keys.exit_code == 0, keys.output
    result = invoke(*arguments(folder, sharp_teacher_dir, tiny_llama_dir, suite_file, "--sign-key",
                               str(folder / "signer")))
    assert result.exit_code == 0, result.output
    return folder, result.output


def test_a_run_trains_a_student_per_policy_and_size_and_signs_a_report_verify_accepts(finished):
    folder, output = finished
    assert "students: 6 trained now, 0 already finished" in output and "stage seconds:" in output
    report = folder / "out" / "report"
    assert {p.name for p in report.iterdir()} == {"report.html", "leakage-curves.svg", "audit.db", MANIFEST,
                                                  ENVELOPE, "signer.pub"}
    verified = CliRunner().invoke(cli, ["verify", str(report), "--public-key", str(folder / "signer.pub")])
    assert verified.exit_code == 0, verified.output
    assert "ok: the leakage curves, CMI estimates and answer match the database" in verified.output
    html = (report / "report.html").read_text()
    assert all(policy in html for policy in POLICIES) and "inconclusive" in html and "<script" not in html
    svg = (report / "leakage-curves.svg").read_text()
    assert svg.startswith("<svg") and "<script" not in svg


def test_each_point_is_the_audit_s_own_claim_with_its_n_and_the_students_are_controls(finished, tiny_llama_dir):
    folder, _ = finished
    with Store.open(folder / "leak.db", create=False) as store:
        models = {m["name"]: m for m in store.models()}
        headlines = {r.comparison: r for r in store.results(headline=True)}
        cmi = {r.comparison: r for r in store.results(adversary="exposure", metric="cmi")}
        training = {c["subject"]: c for c in store.costs() if c["stage"] == "distill"}
        eval_probes = {p["id"] for p in store.selected_probes("eval")}
        train_probes = {p["id"] for p in store.selected_probes("train")}
    names = [f"control:{slug(p)}-{n}" for n in (2, 4) for p in POLICIES]
    assert models["suspect"]["spec"] == f"hf:{tiny_llama_dir}" and all(n in models for n in names)
    assert set(headlines) == {"teacher-vs-suspect", *(f"teacher-vs-{n}" for n in names)}
    assert all(r.n >= 6 and r.q == 6 for r in headlines.values())  # q: evaluation queries, not training ones
    assert set(cmi) == {f"exposure:{p}" for p in POLICIES} and all(r.n == 6 for r in cmi.values())
    assert cmi["exposure:text"].estimate == pytest.approx(0.0, abs=1e-12)
    assert len(eval_probes) == 6 and len(train_probes) == 4 and not eval_probes & train_probes
    assert {training[n]["details"]["train_size"] for n in names} == {2, 4}
    purified = json.loads((folder / "out" / "students" / f"{slug(POLICIES[2])}-4" / COMPLETE_MARKER).read_text())
    assert purified["config"]["objective"] == "kd" and purified["examples"] == 4
    fitted = purified["config"]["exposure"]["fitted"]
    assert fitted["on"]["responses"] == 4 and fitted["steps"][0]["step"] == "purify:0.5"


def test_a_second_run_redoes_nothing_but_the_estimates_and_the_report(finished, sharp_teacher_dir,  # noqa: F811
                                                                       tiny_llama_dir, suite_file):
    folder = finished[0]
    result = invoke(*arguments(folder, sharp_teacher_dir, tiny_llama_dir, suite_file, "--sign-key",
                               str(folder / "signer")))
    assert result.exit_code == 0, result.output
    assert "students: 0 trained now, 6 already finished" in result.output
    assert "evaluation responses: already complete (skipped)" in result.output
    assert "analysis: results are current (skipped)" in result.output
    assert "fidelity: current (skipped)" in result.output


def test_every_model_is_read_on_the_teacher_s_responses_and_each_policy_against_its_reference(finished):
    folder, _ = finished
    with Store.open(folder / "leak.db", create=False) as store:
        kl = {r.comparison: r for r in store.results(adversary="teacher-forced", metric="kl-to-teacher")}
        top1 = {r.comparison: r for r in store.results(adversary="teacher-forced",
                                                       metric="top1-agreement")}
        pairs = {r.comparison: r for r in store.results(adversary="teacher-forced", metric="kl-difference")}
    names = [f"control:{slug(p)}-{n}" for n in (2, 4) for p in POLICIES]
    assert set(kl) == set(top1) == {"teacher-vs-suspect", *(f"teacher-vs-{n}" for n in names)}
    assert all(r.estimate >= 0 and r.n == 6 and r.q == 6 and r.t["tokens_in"] > 0 for r in kl.values())
    assert all(0 <= r.estimate <= 1 for r in top1.values())
    assert set(pairs) == {f"control:top-k3-{n}-vs-control:text-{n}" for n in (2, 4)} | {
        f"control:top-k3_purify0.5-{n}-vs-control:top-k3-{n}" for n in (2, 4)}
    for comparison, row in pairs.items():
        model, reference = comparison.split("-vs-")
        apart = kl[f"teacher-vs-{model}"].estimate - kl[f"teacher-vs-{reference}"].estimate
        assert row.estimate == pytest.approx(apart)
        assert row.details["reference"] == reference and row.n == 6
    html = (folder / "out" / "report" / "report.html").read_text()
    assert "read on the teacher&#39;s own responses" in html or "read on the teacher's own responses" in html


def test_every_model_and_each_top1_keeping_policy_has_a_reference_accuracy(finished):
    folder, _ = finished
    with Store.open(folder / "leak.db", create=False) as store:
        rows = {r.comparison: r for r in store.results(adversary="reference-check", metric="reference-accuracy")}
        agreement = {r.comparison: r.estimate for r in store.results(adversary="exposure", metric="top1-agreement")}
    names = [f"control:{slug(p)}-{n}" for n in (2, 4) for p in POLICIES]
    assert {f"teacher-vs-{n}" for n in ["suspect", *names]} <= set(rows)
    keeping = {c for c, value in agreement.items() if value == 1.0}
    assert "exposure:text" in keeping and {c for c in rows if c.startswith("exposure:")} == keeping
    assert all(0 <= r.estimate <= 1 and r.details["checkable_probes"] >= 1 for r in rows.values())


def test_the_teacher_read_on_its_own_recorded_responses_is_at_kl_zero(finished, sharp_teacher_dir,  # noqa: F811
                                                                       tiny_llama_dir):
    """The recorded distributions and the teacher-forced ones line up position by position: an off-by-one
    would show here as a large divergence and a low agreement."""
    from audit.cmi import recorded_distributions
    from audit.fidelity import teacher_forced

    with Store.open(finished[0] / "leak.db", create=False) as store:
        teacher_id = store.model("teacher")["id"]
        recorded = recorded_distributions(store, teacher_id, "eval")
        by_query = {r["query_id"]: r for r in store.responses(teacher_id, "eval")}
    answers = [by_query[r.query_id] for r in recorded]
    itself = teacher_forced(f"hf:{sharp_teacher_dir}", answers, recorded, device="cpu")
    other = teacher_forced(f"hf:{tiny_llama_dir}", answers, recorded, device="cpu")
    assert itself.divergence.max() < 1e-4 and itself.agreement.mean() == 1.0
    assert other.divergence.mean() > 0.1
    same = itself.paired_difference(itself, 0.95, 0)
    assert same.estimate == 0.0
    with pytest.raises(ValueError):
        itself.paired_difference(teacher_forced(f"hf:{sharp_teacher_dir}", answers[1:], recorded[1:], device="cpu"),
                                 0.95, 0)


def test_a_killed_run_resumes_where_it_stopped(tmp_path, sharp_teacher_dir, tiny_llama_dir, suite_file,  # noqa: F811
                                               monkeypatch):
    trained = []
    real = leakage._distil

    def killed_after_two(options, student):
        if len(trained) == 2:
            raise KeyboardInterrupt
        trained.append(student)
        return real(options, student)

    args = arguments(tmp_path, sharp_teacher_dir, tiny_llama_dir, suite_file, policies=("text", "top-k:3"))
    monkeypatch.setattr(leakage, "_distil", killed_after_two)
    assert invoke(*args).exit_code == 130
    assert not (tmp_path / "out" / "report").exists()
    monkeypatch.undo()
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "students: 2 trained now, 2 already finished" in result.output


def test_a_changed_signed_leakage_answer_fails_verify_even_when_re_signed(finished, tmp_path):
    report = tmp_path / "report"
    shutil.copytree(finished[0] / "out" / "report", report)
    statement = json.loads((report / MANIFEST).read_text())
    statement["predicate"]["leakage"]["answer"][0] = "Exposing log-probabilities costs nothing."
    payload = statement_bytes(statement)
    (report / MANIFEST).write_bytes(payload)
    envelope = sign_payload(payload, load_private_key(finished[0] / "signer"))
    (report / ENVELOPE).write_text(json.dumps(envelope) + "\n")
    assert base64.b64decode(envelope["payload"]) == payload
    result = CliRunner().invoke(cli, ["verify", str(report), "--public-key", str(finished[0] / "signer.pub")])
    assert result.exit_code == 1 and "the signed leakage answer differs" in result.output


# ---------------------------------------------------------------------------
# Bad input: one line, exit 1, nothing written that looks finished
# ---------------------------------------------------------------------------


def refused(result, message, folder):
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: {message}") or message in result.output, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    students = folder / "out" / "students"
    assert not any(students.glob(f"*/{COMPLETE_MARKER}")) and not (folder / "out" / "report").exists()


@pytest.mark.parametrize("sizes, message", [
    ("0,4", "--train-sizes '0,4': needs positive whole numbers"),
    ("4,x", "--train-sizes '4,x': needs positive whole numbers"),
    ("-3", "--train-sizes '-3': needs positive whole numbers"),
    ("4,4", "--train-sizes '4,4': each size once"),
])
def test_train_sizes_must_be_distinct_positive_whole_numbers(tmp_path, sizes, message):
    result = CliRunner().invoke(cli, arguments(tmp_path, tmp_path, tmp_path, tmp_path, sizes=sizes))
    refused(result, message, tmp_path)
    assert not (tmp_path / "leak.db").exists()


@pytest.mark.parametrize("policies, flags, message", [
    (("text", "logits:3"), (), "unknown exposure policy step 'logits:3'"),
    (("top-k:8",), (), "--policy top-k:8: exposes 8 tokens per position, but --top-logprobs 3 records only 3"),
    (("top-k:3", "top-k:3"), (), "--policy top-k:3: given twice"),
    (("top-k:3+purify:2",), (), "purify:2: needs a number > 0 and <= 1"),
])
def test_a_bad_policy_is_refused_before_anything_is_asked(tmp_path, policies, flags, message):
    result = CliRunner().invoke(cli, arguments(tmp_path, tmp_path, tmp_path, tmp_path, *flags, policies=policies))
    refused(result, message, tmp_path)
    assert not (tmp_path / "leak.db").exists()


def test_a_teacher_without_token_ids_is_refused(tmp_path, tiny_llama_dir):
    args = arguments(tmp_path, tiny_llama_dir, tiny_llama_dir, tmp_path)
    args[args.index("--teacher") + 1] = "openai:http://127.0.0.1:9/v1#teacher"
    refused(CliRunner().invoke(cli, args), "--teacher openai:http://127.0.0.1:9/v1#teacher: leakage trains every "
                                           "student by KD", tmp_path)


@pytest.fixture(scope="module")
def other_tokenizer_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny llama with one token more: another vocabulary, so KD over token ids would mean nothing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tokenizer.add_tokens(["<another>"])
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.resize_token_embeddings(len(tokenizer))
    directory = tmp_path_factory.mktemp("other-tokenizer")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_kd_across_tokenizers_is_refused_before_the_teacher_answers(tmp_path, sharp_teacher_dir,  # noqa: F811
                                                                     other_tokenizer_dir, suite_file):
    result = CliRunner().invoke(cli, arguments(tmp_path, sharp_teacher_dir, other_tokenizer_dir, suite_file))
    refused(result, f"--student hf:{other_tokenizer_dir}: its tokenizer is not the teacher's", tmp_path)
    assert not (tmp_path / "leak.db").exists()


def record_without_distributions(db_path, teacher, suite):
    """A database whose teacher answered the training probes of `distill --train-probes 4` without top-k."""
    with Store.open(db_path) as store:
        teacher_training_responses(store, DistillOptions(
            teacher=f"hf:{teacher}", student="unused", db_path=db_path, out_dir=db_path.parent, train_queries=4,
            suite=str(suite), max_new_tokens=5, device="cpu", quiet=True))


def test_a_database_without_recorded_distributions_is_refused_before_training(tmp_path, sharp_teacher_dir,  # noqa: F811
                                                                              tiny_llama_dir, suite_file):
    record_without_distributions(tmp_path / "leak.db", sharp_teacher_dir, suite_file)
    result = CliRunner().invoke(cli, arguments(tmp_path, sharp_teacher_dir, tiny_llama_dir, suite_file))
    refused(result, "4 of 4 teacher training responses have no recorded top-k distributions", tmp_path)


def test_a_k_above_what_the_database_recorded_is_refused_before_training(tmp_path, sharp_teacher_dir,  # noqa: F811
                                                                         tiny_llama_dir, suite_file):
    with Store.open(tmp_path / "leak.db") as store:
        teacher_training_responses(store, DistillOptions(
            teacher=f"hf:{sharp_teacher_dir}", student="unused", db_path=tmp_path / "leak.db", out_dir=tmp_path,
            train_queries=4, suite=str(suite_file), max_new_tokens=5, top_logprobs=2, device="cpu", quiet=True))
    result = CliRunner().invoke(cli, arguments(tmp_path, sharp_teacher_dir, tiny_llama_dir, suite_file))
    refused(result, "exposure top-k:3: the teacher's distributions were recorded with only 2 tokens", tmp_path)


@pytest.mark.parametrize("policies, given, recorded", [
    (("text", "top-k:5", "top-k:3+purify:0.5"), None, 5),
    (("text", "purify:0.5"), None, 20),
    (("text", "top-k:5"), 8, 8),
])
def test_k_recorded_is_the_widest_policy_s_unless_given(tmp_path, policies, given, recorded):
    options = leakage.LeakageOptions(teacher="t", student="s", policies=policies, train_sizes=(2,),
                                     db_path=tmp_path / "leak.db", out_dir=tmp_path, top_logprobs=given)
    assert leakage._with_top_logprobs(options).top_logprobs == recorded


def test_sizes_parse_in_ascending_order_and_policies_become_folder_names():
    assert parse_sizes(" 400, 100 ") == (100, 400)
    assert slug("top-k:20+purify:0.5") == "top-k20_purify0.5" and "+" not in slug("text+noise:1")


def claim(estimate, low, high, metric="advantage", n=48):
    from audit.verdict import Claim

    return Claim(adversary="teacher-likelihood" if metric == "advantage" else "x", comparison="c", category="all",
                 split="all", metric=metric, n=n, estimate=estimate, ci_low=low, ci_high=high, confidence=0.95,
                 ci_method="m", p_value=None, p_holm=None, p_bh=None, q=n, headline=metric == "advantage")


def test_the_answer_takes_a_side_only_where_the_intervals_do_not_overlap():
    from audit.report.leakage import Exposure, Point, answer

    def point(policy, size, eps, sim, kl=None, difference=None, reference=None):
        return Point(policy, size, "m", eps, sim, None, kl=kl, kl_difference=difference, reference=reference)

    base = point("text", 0, claim(0.9, 0.8, 1.0), claim(0.40, 0.35, 0.45, "cosine"))
    curves = {
        "text": [base, point("text", 100, claim(0.7, 0.6, 0.8), claim(0.50, 0.45, 0.55, "cosine"))],
        "top-k:20": [base, point("top-k:20", 100, claim(0.3, 0.2, 0.4), claim(0.52, 0.47, 0.57, "cosine"),
                                 claim(0.36, 0.29, 0.45, "kl-to-teacher"), claim(-0.07, -0.09, -0.05, "kl-difference"),
                                 "text")],
        "top-k:20+purify:0.5": [base, point("top-k:20+purify:0.5", 100, claim(0.35, 0.2, 0.5), None,
                                            claim(0.38, 0.3, 0.47, "kl-to-teacher"),
                                            claim(0.02, -0.01, 0.04, "kl-difference"), "top-k:20")],
    }
    exposures = [Exposure("text", claim(0.0, 0.0, 0.0, "cmi"), claim(1.0, 1.0, 1.0, "top1-agreement")),
                 Exposure("top-k:20", claim(0.4, 0.35, 0.45, "cmi"), claim(1.0, 1.0, 1.0, "top1-agreement")),
                 Exposure("top-k:20+purify:0.5", claim(0.1, 0.08, 0.12, "cmi"), claim(1.0, 1.0, 1.0, "top1-agreement"))]
    said = answer(curves, exposures)
    assert said[0].startswith("Untrained, the base model was at ε ≤ 1.00")
    top_k = next(s for s in said if s.startswith("Under top-k:20, the student distilled on 100"))
    assert "ε ≤ 0.40 (ε = 0.30, 95% CI 0.20–0.40, n = 48, teacher-likelihood)" in top_k
    assert "under text with as many examples: closer to the teacher (the intervals do not overlap)" in top_k
    assert "similarity 0.52 (95% CI 0.47–0.57, n = 48) against 0.50 (95% CI 0.45–0.55, n = 48): inconclusive" in top_k
    defended = next(s for s in said if s.startswith("Under top-k:20+purify:0.5"))
    assert "under top-k:20 with as many examples: inconclusive (the intervals overlap)" in defended
    assert "no comparison (an interval is missing)" in defended
    forced = next(s for s in said if s.startswith("Read on the teacher's own responses, the top-k:20 student"))
    assert "a difference of -0.070 (95% CI" in forced or "a difference of −0.070 (95% CI" in forced
    assert forced.endswith("closer to the teacher's distributions (the paired interval lies below 0).")
    defended_kl = next(s for s in said if "the top-k:20+purify:0.5 student's KL" in s)
    assert defended_kl.endswith("inconclusive (the paired interval contains 0).")
    assert said[-1].endswith("against 0.400 (95% CI 0.350–0.450, n = 48) for top-k:20: less distillation-relevant "
                             "information (the intervals do not overlap).")


def test_a_signed_database_with_a_malformed_leakage_record_fails_verify_in_one_line(finished, tmp_path):
    report = tmp_path / "report"
    shutil.copytree(finished[0] / "out" / "report", report)
    database = report / "audit.db"
    with Store.open(database) as store:  # the signer's own crafted database: a plan without its students
        plan = next(c for c in store.costs() if c["stage"] == "leakage")
        store.record_cost(subject="leakage", stage="leakage", details={"policies": plan["details"]["policies"]})
        store.db.execute("PRAGMA journal_mode=DELETE")
    from audit.report.signing import file_sha256

    statement = json.loads((report / MANIFEST).read_text())
    for subject in statement["subject"]:
        if subject["name"] == "audit.db":
            subject["digest"]["sha256"] = file_sha256(database)
    payload = statement_bytes(statement)
    (report / MANIFEST).write_bytes(payload)
    (report / ENVELOPE).write_text(json.dumps(sign_payload(payload, load_private_key(finished[0] / "signer"))) + "\n")
    result = CliRunner().invoke(cli, ["verify", str(report), "--public-key", str(finished[0] / "signer.pub")])
    assert result.exit_code == 1 and "its leakage record is malformed (KeyError)" in result.output
    assert result.output.count("\n") == 1


def test_reference_accuracy_reads_each_response_and_skips_a_malformed_reference():
    from audit.utility import check_responses

    references = {"sum": {"type": "number", "value": 4}, "capital": {"type": "contains", "any": ["Paris"]},
                  "broken": {"type": "number"}, "free": None}
    responses = [{"probe_id": "sum", "text": "2 + 2 = 4"}, {"probe_id": "sum", "text": "It is 5."},
                 {"probe_id": "capital", "text": "paris, of course"}, {"probe_id": "broken", "text": "4"},
                 {"probe_id": "free", "text": "anything"}, {"probe_id": "capital", "text": None}]
    checked = check_responses(responses, references)
    assert checked.malformed == 1 and set(checked.by_probe) == {"sum", "capital"}
    assert checked.by_probe["sum"].tolist() == [1.0, 0.0] and checked.by_probe["capital"].tolist() == [1.0, 0.0]
    assert checked.accuracy(0.95, 0).estimate == 0.5  # pooled over the four responses read
