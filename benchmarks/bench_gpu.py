"""The transformers backend on an accelerator: tokens/s by batch size, and judge verdicts by log-probability vs text.

    python benchmarks/bench_gpu.py --shape-from DIR [--device cuda] [--prompts 256] [--judge-prompts 64]

DIR holds a checkpoint's config and tokenizer (e.g. the converted cache of
smollm2-135m-instruct without its weights). The model is built from that
config with random weights: the same shape, tokenizer and chat template, so
the same compute per token, without carrying weights to the machine. Random
weights rarely emit EOS, so every prompt runs to --max-new-tokens: the
figures are an upper bound on work per prompt, not a quality measure.

The judge part times the judge's own prompts (the first ones it asks on a
synthetic audit, ~1,000 tokens each) read from the answer tokens'
log-probabilities with shared openings, as the judge runs, against generating
--verdict-tokens tokens of verdict text (12: what smollm2-135m-instruct wrote
on average as a judge on the CPU), one prompt at a time and all at once.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def build_random_checkpoint(shape_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(shape_dir)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(shape_dir).save_pretrained(out)
    for extra in ("chat_template.jinja", "generation_config.json"):
        if (shape_dir / extra).exists():
            shutil.copy(shape_dir / extra, out / extra)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape-from", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,16,64,256")
    parser.add_argument("--judge-prompts", type=int, default=64, help="0: skip the judge part")
    parser.add_argument("--verdict-tokens", type=int, default=12)
    args = parser.parse_args()
    if not (args.shape_from / "config.json").is_file():
        parser.error(f"--shape-from {args.shape_from}: no config.json there (a checkpoint folder without its weights)")

    from audit import threads

    threads.apply(threads.choose())  # before torch loads, as the CLI does
    import torch

    from audit.models import load_model
    from audit.models.base import GenParams
    from audit.probes import load_suite, sample_probes

    prompts = [p.text for p in sample_probes(load_suite("bbi-probes-v1"), args.prompts, seed=0)]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_random_checkpoint(args.shape_from, Path(tmp) / "model")
        model = load_model(f"hf:{checkpoint}", device=args.device, dtype=args.dtype)
        info = model.describe()
        print(f"device {info.details.get('device')}, dtype {info.details.get('dtype')}, "
              f"{info.param_count / 1e6:.1f}M parameters, torch {torch.__version__}")
        if torch.cuda.is_available():
            print(f"gpu {torch.cuda.get_device_name()}")
        model.generate(prompts[:8], GenParams(max_new_tokens=8, batch_size=8))  # warm-up
        baseline = None
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            subset = prompts if batch_size > 1 else prompts[:16]  # one at a time: a sample is enough
            params = GenParams(max_new_tokens=args.max_new_tokens, batch_size=batch_size)
            start = time.perf_counter()
            out = []
            for i in range(0, len(subset), batch_size):
                out += model.generate(subset[i:i + batch_size], params)
            seconds = time.perf_counter() - start
            tokens = sum(g.tokens_out for g in out)
            rate = tokens / seconds
            baseline = baseline or rate
            print(f"batch {batch_size:>4}: {len(subset):>4} prompts, {tokens:>6} tokens in {seconds:6.2f} s "
                  f"= {rate:8.1f} tokens/s ({rate / baseline:5.1f}x one at a time)")
        if args.judge_prompts:
            bench_judge(model, args.judge_prompts, args.verdict_tokens)
        if torch.cuda.is_available():
            print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


def bench_judge(model, n_prompts: int, verdict_tokens: int) -> None:
    """Verdicts from log-probabilities (shared openings) vs generated verdict text, side by side."""
    import bench_analysis

    from audit.adversaries import judge
    from audit.models.base import GenParams

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "audit.db"
        bench_analysis.build_database(db, max(200, n_prompts))
        prompts = bench_analysis.judge_prompts(db, n_prompts)
    reader = judge.VerdictReader(model)
    reader.read(prompts[:2])  # warm-up
    start = time.perf_counter()
    reader.read(prompts)
    score_s = time.perf_counter() - start
    text_s, generated = {}, []
    for batch_size in (1, len(prompts)):
        params = GenParams(max_new_tokens=verdict_tokens, temperature=0.0, batch_size=batch_size)
        start = time.perf_counter()
        generated = model.generate(prompts, params)
        text_s[batch_size] = time.perf_counter() - start
    mean_in = sum(g.tokens_in for g in generated) / len(prompts)
    mean_out = sum(g.tokens_out for g in generated) / len(prompts)
    print(f"judge: {len(prompts)} prompts of ~{mean_in:.0f} tokens, text verdicts {mean_out:.1f} tokens on average")
    print(f"  log-probabilities, shared openings (what the judge runs): {1000 * score_s / len(prompts):8.2f} ms per verdict")
    for batch_size, seconds in text_s.items():
        print(f"  verdict text, batch {batch_size:>3}: {1000 * seconds / len(prompts):8.2f} ms per verdict "
              f"({seconds / score_s:.1f}x the log-probability path)")
    print(f"  fastest text path / log-probability path: {min(text_s.values()) / score_s:.1f}x (target >= 5x)")

if __name__ == "__main__":
    main()
