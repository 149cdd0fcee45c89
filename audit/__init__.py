"""distill-audit: (epsilon, q, t, A)-behavioral indistinguishability audits of suspected LLM distillations."""

__version__ = "0.1.0"
