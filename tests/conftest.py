"""Shared fixtures: tiny random-initialised llama and gemma3 checkpoints with a locally trained tokenizer.

They exercise every transformers code path (batching, padding, scoring,
adapters, chat template or none) in milliseconds and without any hub access.
"""

from __future__ import annotations

import os

import pytest

from audit import threads

threads.apply(threads.choose())  # the CLI's thread policy, before any test imports torch
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "The teacher answers every question with care.",
    "A suspect model may imitate the teacher closely.",
    "Write a short poem about the sea and the sky.",
    "What is the capital of France? Paris is the capital.",
    "Explain how a transformer predicts the next token.",
    "def add(a, b): return a + b",
    "One two three four five six seven eight nine ten.",
]
SPECIAL = ["<unk>", "<pad>", "<bos>", "<eos>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<eos>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def build_tokenizer(chat_template: str | None):
    """A byte-level BPE of ~300 tokens trained on SENTENCES, with BOS/EOS/PAD."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<bos>", eos_token="<eos>")
    fast.chat_template = chat_template
    return fast


def _save(model, tokenizer, directory):
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A 2-layer llama (hidden 32) with a chat template: ``hf:`` + this path is a valid spec."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = build_tokenizer(CHAT_TEMPLATE)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    return _save(LlamaForCausalLM(config), tokenizer, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tmp_path_factory):
    """A 2-layer gemma3 text model (one sliding, one full attention layer), no chat template: plain prompts."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(1)
    tokenizer = build_tokenizer(None)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                              sliding_window=8, layer_types=["sliding_attention", "full_attention"],
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id)
    return _save(Gemma3ForCausalLM(config), tokenizer, tmp_path_factory.mktemp("tiny-gemma3"))


@pytest.fixture(scope="session")
def tiny_lora_dir(tiny_llama_dir, tmp_path_factory):
    """A LoRA adapter on the tiny llama whose B matrices are non-zero, so it really changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model

    from audit.models import load_hf

    model, _ = load_hf(f"hf:{tiny_llama_dir}", device="cpu")
    torch.manual_seed(2)  # before get_peft_model, whose lora_A draws would otherwise depend on the tests run before
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    directory = tmp_path_factory.mktemp("tiny-lora")
    peft_model.save_pretrained(directory)
    return directory
