"""Spec parsing and the transformers backend on tiny random models (fast)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from audit.errors import SpecError
from audit.models import GenParams, describe_spec, load_hf, load_model, parse_spec
from audit.models.transformers_backend import prefix_runs

PROMPTS = [
    "Hi",
    "What is the capital of France?",
    "Write a short poem about the sea and the sky, please.",
    "Explain how a transformer predicts the next token, step by step.",
    "two",
]


# ---- specs -------------------------------------------------------------------


def test_parse_spec_kinds():
    assert parse_spec("smollm2-135m-instruct").kind == "bundled"
    assert parse_spec("hf:/m").path.as_posix() == "/m"
    peft = parse_spec("peft:gemma3-270m+/a/b")
    assert (peft.kind, peft.base.text, peft.adapter.as_posix()) == ("peft", "gemma3-270m", "/a/b")
    replay = parse_spec("replay:/x/audit.db#control:other")
    assert (replay.path.as_posix(), replay.role) == ("/x/audit.db", "control:other")


@pytest.mark.parametrize("text", ["openai:http://h:1/v1?key_env=MY_KEY#m", "openai:http://h:1/v1#m?key_env=MY_KEY"])
def test_parse_openai_spec_with_key_env(text):
    spec = parse_spec(text)
    assert (spec.url, spec.model, spec.key_env) == ("http://h:1/v1", "m", "MY_KEY")


@pytest.mark.parametrize("text, reason", [
    ("nosuch-model", "unknown"),
    ("ftp:/x", "unknown"),
    ("openai:http://h:1/v1", "no model name"),
    ("openai:http://h:1/v1#m?retries=3", "unknown option"),
    ("replay:/x/audit.db", "expected replay"),
    ("peft:/adapter", "expected peft"),
    ("peft:openai:http://h/v1#m+/a", "local base"),
])
def test_malformed_specs_are_one_line_errors(text, reason):
    with pytest.raises(SpecError, match=reason) as err:
        parse_spec(text)
    assert text in str(err.value) and "\n" not in str(err.value)


def test_missing_paths_fail_before_loading(tmp_path):
    with pytest.raises(SpecError, match="not a directory"):
        load_model(f"hf:{tmp_path}/nowhere")
    with pytest.raises(SpecError, match="does not exist"):
        load_model(f"gguf:{tmp_path}/nothing.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="no config.json"):
        load_model(f"hf:{tmp_path}/empty")


def test_gguf_of_unsupported_architecture(tmp_path):
    import gguf

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(path, "rwkv6")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(SpecError, match="architecture 'rwkv6' is not supported"):
        load_model(f"gguf:{path}")


def test_garbage_gguf_is_a_spec_error(tmp_path):
    path = tmp_path / "garbage.gguf"
    path.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(SpecError, match="not a readable GGUF"):
        load_model(f"gguf:{path}")


# ---- generation --------------------------------------------------------------


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return load_model(f"hf:{tiny_llama_dir}", device="cpu")


@pytest.fixture(scope="module")
def gemma3(tiny_gemma3_dir):
    return load_model(f"hf:{tiny_gemma3_dir}", device="cpu")


@pytest.mark.parametrize("which", ["llama", "gemma3"])
def test_batched_greedy_equals_one_at_a_time(which, request):
    model = request.getfixturevalue(which)
    batched = model.generate(PROMPTS, GenParams(max_new_tokens=8, batch_size=4))
    single = model.generate(PROMPTS, GenParams(max_new_tokens=8, batch_size=1))
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.tokens_out for g in batched] == [g.tokens_out for g in single]
    assert all(g.error is None and g.tokens_in > 0 for g in batched)


def test_left_padding_and_lengths(llama):
    """Mixed lengths in one batch: each answer as if alone, tokens_in is the unpadded prompt length."""
    gens = llama.generate(PROMPTS, GenParams(max_new_tokens=5, batch_size=len(PROMPTS)))
    assert [g.tokens_in for g in gens] == [len(llama.prompt_ids(p)) for p in PROMPTS]
    assert len({g.tokens_in for g in gens}) > 1
    for g in gens:
        assert g.finish_reason in ("stop", "length")
        assert g.tokens_out == 5 if g.finish_reason == "length" else g.tokens_out <= 5


def test_chat_template_is_applied_when_present(llama, gemma3):
    assert llama.tokenizer.decode(llama.prompt_ids("Hi")) == "<|user|>Hi<eos><|assistant|>"
    assert gemma3.tokenizer.decode(gemma3.prompt_ids("Hi")).endswith("Hi")


def test_stop_on_eos_per_sequence(tiny_llama_dir):
    """The first row of a batch is forced to EOS, the others forbidden it: one stops, the others run on."""
    model = load_model(f"hf:{tiny_llama_dir}", device="cpu")
    eos = model.tokenizer.eos_token_id

    def force_eos_in_row_0(module, inputs, logits):
        logits[:, :, eos] = -100.0
        logits[0, :, eos] = 100.0
        return logits

    model.model.lm_head.register_forward_hook(force_eos_in_row_0)
    prompts = PROMPTS[:3]  # the longest (row 0 after sorting) is prompts[2]
    gens = model.generate(prompts, GenParams(max_new_tokens=6, batch_size=3))
    assert [(g.tokens_out, g.finish_reason) for g in gens] == [(6, "length"), (6, "length"), (1, "stop")]
    assert gens[2].text == "" and gens[0].text


SEEDS = [11, 2**62 + 3, 12, 7, 99]


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_a_sample_drawn_in_a_mixed_batch_equals_the_same_prompt_and_seed_drawn_alone(llama, top_p):
    """Left padding, batch-mates and position in the batch change nothing: the draw is the prompt's and its seed's."""
    params = GenParams(max_new_tokens=12, temperature=1.0, top_p=top_p, batch_size=len(PROMPTS))
    batched = llama.generate(PROMPTS, params, seeds=SEEDS)
    reordered = llama.generate(PROMPTS[::-1], replace(params, batch_size=2), seeds=SEEDS[::-1])[::-1]
    alone = [llama.generate([p], params, seeds=[s])[0] for p, s in zip(PROMPTS, SEEDS)]
    assert [g.text for g in batched] == [g.text for g in reordered] == [g.text for g in alone]
    assert [g.tokens_out for g in batched] == [g.tokens_out for g in alone]
    greedy = llama.generate(PROMPTS, GenParams(max_new_tokens=12, batch_size=len(PROMPTS)))
    assert [g.text for g in batched] != [g.text for g in greedy]


def test_one_prompt_with_two_seeds_gives_two_draws_and_each_seed_gives_the_same_draw_again(llama):
    params = GenParams(max_new_tokens=12, temperature=1.0, seed=5, batch_size=4)
    first, second, default = llama.generate([PROMPTS[1]] * 3, params, seeds=[1, 2, 5])
    assert first.text != second.text
    assert llama.generate([PROMPTS[1]], params)[0].text == default.text  # no seeds: params.seed for each prompt
    assert llama.generate([PROMPTS[1]], params, seeds=[2])[0].text == second.text


def test_sampled_logprobs_are_the_model_s_own_not_the_sampler_s(llama):
    """The sampler hands generate scores of 0 and -inf; what is recorded is log p of the drawn token under the model."""
    import torch

    params = GenParams(max_new_tokens=4, temperature=1.0, logprobs=True, top_logprobs=3)
    [g] = llama.generate([PROMPTS[1]], params, seeds=[3])
    with torch.no_grad():
        logits = llama.model(input_ids=torch.tensor([llama.prompt_ids(PROMPTS[1])])).logits[0, -1]
    model_logprobs = torch.log_softmax(logits, -1)
    assert g.logprobs[0] < -0.01 and (model_logprobs - g.logprobs[0]).abs().min().item() < 1e-4
    assert max(g.top_logprobs[0].values()) == pytest.approx(model_logprobs.max().item(), abs=1e-4)


def test_the_row_sampler_draws_each_token_as_often_as_its_tempered_probability():
    import torch

    from audit.models.transformers_backend import RowSampler

    probs = torch.tensor([0.6, 0.3, 0.1, 0.0])
    rows = 4000
    sampler = RowSampler(list(range(rows)), GenParams(temperature=0.5))
    scores = sampler(None, probs.log().expand(rows, -1).contiguous())
    drawn = scores.argmax(dim=-1)
    counts = torch.bincount(drawn, minlength=4)
    assert torch.isinf(scores).sum().item() == rows * 3 and counts[3] == 0  # one token per row, never a p = 0 one
    tempered = probs**2 / (probs**2).sum()  # temperature 0.5 squares the probabilities
    assert counts.float().div(rows).tolist() == pytest.approx(tempered.tolist(), abs=0.03)


def test_top_p_keeps_the_most_likely_tokens_whose_mass_first_reaches_it():
    import torch

    from audit.models.transformers_backend import nucleus

    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]])
    assert torch.equal(nucleus(probs, 0.75), torch.tensor([[0.0, 0.5, 0.0, 0.3]]))
    assert torch.equal(nucleus(probs, 0.01), torch.tensor([[0.0, 0.5, 0.0, 0.0]]))
    assert torch.equal(nucleus(probs, 1.0), probs)


def test_generated_logprobs_are_the_greedy_choice(llama):
    """Under greedy decoding each chosen token is the most likely one; the first matches a manual forward pass."""
    import torch

    gens = llama.generate(PROMPTS[:2], GenParams(max_new_tokens=6, batch_size=2, logprobs=True, top_logprobs=3))
    for prompt, g in zip(PROMPTS, gens):
        assert len(g.logprobs) == len(g.tokens) == g.tokens_out == len(g.top_logprobs)
        assert all(1 <= len(top) <= 3 for top in g.top_logprobs)
        assert g.logprobs == pytest.approx([max(top.values()) for top in g.top_logprobs], abs=1e-5)
        with torch.no_grad():
            logits = llama.model(input_ids=torch.tensor([llama.prompt_ids(prompt)])).logits[0, -1]
        assert g.logprobs[0] == pytest.approx(torch.log_softmax(logits, -1).max().item(), abs=1e-4)


def test_too_long_prompt_is_an_error_generation(llama):
    gens = llama.generate(["word " * 300, "Hi"], GenParams(max_new_tokens=4))
    assert gens[0].error and "exceeds the context" in gens[0].error
    assert gens[1].error is None


# ---- scoring -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["llama", "gemma3"])
@pytest.mark.parametrize("kind", ["multi-token", "one-token"])
def test_score_matches_manual_logprobs(which, kind, request):
    import torch

    model = request.getfixturevalue(which)
    prompt = "What is the capital?"
    continuations = {"multi-token": ["Paris is the capital.", "Sea", "one two three four five"],
                     "one-token": ["A", "B"]}[kind]
    scores = model.score(prompt, continuations)
    prompt_ids = model.prompt_ids(prompt)
    for cont, got in zip(continuations, scores):
        cont_ids = model.tokenizer(cont, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + cont_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model.model(input_ids=ids).logits[0].float(), dim=-1)
        expected = [logp[len(prompt_ids) + k - 1, t].item() for k, t in enumerate(cont_ids)]
        assert got == pytest.approx(expected, abs=1e-4)
    assert model.score(prompt, [""]) == [[]]


@pytest.mark.parametrize("which", ["llama", "gemma3"])
def test_next_token_scores_with_shared_openings_equal_one_pass_each(which, request):
    """Runs reuse a prefix cache (gemma3: beyond its 8-token sliding window); numbers must not change."""
    model = request.getfixturevalue(which)
    opening = "You compare writing styles. Reference one: the sea is wide and the sky is blue. " * 3
    prompts = [opening + "Prompt: Hi. Candidate A: yes. Candidate B: no.",
               opening + "Prompt: Hi. Candidate A: no. Candidate B: yes.",
               opening + "Prompt: Why? Candidate A: because. Candidate B: so.",
               "Something else entirely, sharing nothing.",
               opening]
    expected = [[lp[0] for lp in model.score(p, ["A", "B"])] for p in prompts]
    assert model.score_next_token(prompts, ["A", "B"]) == [pytest.approx(e, abs=1e-4) for e in expected]
    encoded = [model.prompt_ids(p) for p in prompts]
    assert [members for _, members in prefix_runs(encoded)] == [[0, 1, 2], [3], [4]]


def test_prefix_runs_group_prompts_that_keep_half_their_common_opening():
    shared = list(range(100))
    encoded = [shared + [1, 2], shared + [3], shared[:40] + [7] * 50, [5] * 40, [5] * 40, [9]]
    runs = prefix_runs(encoded)
    assert runs == [(100, [0, 1]), (0, [2]), (39, [3, 4]), (0, [5])]
    assert all(shared < min(len(encoded[i]) for i in members) for shared, members in runs if shared)


# ---- describe and fingerprints -----------------------------------------------


def test_describe_fingerprint_is_weights_sha(llama, tiny_llama_dir):
    import hashlib

    d = llama.describe()
    assert d.fingerprint == hashlib.sha256((tiny_llama_dir / "model.safetensors").read_bytes()).hexdigest()
    assert d.backend == "transformers" and d.param_count > 0
    assert (d.details["dtype"], d.details["device"]) == ("float32", "cpu")
    text = describe_spec(f"hf:{tiny_llama_dir}", device="cpu")
    assert d.fingerprint in text and "transformers" in text


# ---- peft adapters -----------------------------------------------------------


def test_peft_adapter_loads_and_changes_answers(llama, tiny_llama_dir, tiny_lora_dir):
    adapted = load_model(f"peft:hf:{tiny_llama_dir}+{tiny_lora_dir}", device="cpu")
    d = adapted.describe()
    assert d.details["base_fingerprint"] == llama.describe().fingerprint != d.fingerprint
    assert adapted.score("Hi", ["Paris"]) != llama.score("Hi", ["Paris"])
    model, _ = load_hf(f"peft:hf:{tiny_llama_dir}+{tiny_lora_dir}", device="cpu")
    assert type(model).__name__ == "PeftModel"


def test_peft_adapter_on_wrong_base_named_in_config(tiny_gemma3_dir, tiny_lora_dir):
    with pytest.raises(SpecError, match="trained on"):
        load_model(f"peft:hf:{tiny_gemma3_dir}+{tiny_lora_dir}", device="cpu")


def test_peft_adapter_shape_mismatch(tiny_gemma3_dir, tiny_lora_dir, tmp_path):
    """An adapter whose config names an unknown base: the weight shapes catch the mismatch."""
    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_lora_dir, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "someone/unknown-model"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(SpecError, match="does not fit base"):
        load_model(f"peft:hf:{tiny_gemma3_dir}+{adapter}", device="cpu")


def test_peft_spec_without_adapter(tiny_llama_dir, tmp_path):
    with pytest.raises(SpecError, match="no adapter_config.json"):
        load_model(f"peft:hf:{tiny_llama_dir}+{tmp_path}", device="cpu")


def test_top_k_distributions_come_with_token_ids_from_the_generating_passes(llama):
    """The recorded top-k are the generating passes' own: the first position matches a separate forward pass,
    the chosen ids decode to the answer, and the blob keeps ids and texts."""
    import torch

    from audit.topk import TopK

    [g] = llama.generate([PROMPTS[1]], GenParams(max_new_tokens=5, top_logprobs=4))
    top = TopK.unpack(g.top_k.pack())
    assert top.positions == g.tokens_out == len(top.chosen_ids) and all(len(ids) == 4 for ids in top.ids)
    assert top.chosen_ids == [row[0] for row in top.ids]  # greedy: the chosen token is the most likely
    assert llama.tokenizer.decode(top.chosen_ids, skip_special_tokens=True) == g.text
    with torch.no_grad():
        logits = llama.model(input_ids=torch.tensor([llama.prompt_ids(PROMPTS[1])])).logits[0, -1]
    values, ids = torch.log_softmax(logits, -1).topk(4)
    assert top.ids[0] == ids.tolist() and top.logprobs[0] == pytest.approx(values.tolist(), abs=1e-4)
    assert top.tokens[0] == [llama.tokenizer.decode([t]) for t in ids.tolist()]


def test_the_description_names_the_tokenizer_by_its_vocabulary(llama, tiny_llama_dir, tiny_gemma3_dir):
    same = load_model(f"hf:{tiny_llama_dir}", device="cpu").describe().details["tokenizer"]
    other = load_model(f"hf:{tiny_gemma3_dir}", device="cpu").describe().details["tokenizer"]
    assert llama.describe().details["tokenizer"] == same and len(same) == 64
    assert other == same  # the fixtures share one vocabulary (the chat template is not part of it)
