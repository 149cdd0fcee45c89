"""From a local spec (bundled, hf, gguf, peft) to a loaded transformers model and tokenizer.

Every check that can fail runs before the weights are read, so a bad spec
costs a second, not a model load: missing paths, GGUF architectures that
transformers cannot de-quantise, adapters trained on another base.

GGUF files (the bundled models are GGUF too) are de-quantised once and kept
as a safetensors checkpoint in the cache, keyed by the GGUF's sha256:
de-quantising takes tens of seconds, reading the cache a second or two.
"""

from __future__ import annotations

import importlib.metadata

import hashlib
import json
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import SpecError
from audit.models.cache import atomic_dir, cache_dir, sha256_file, sha256_files
from audit.models.registry import backend_for
from audit.models.spec import ModelSpec, parse_spec

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


@dataclass
class Checkpoint:
    """Where a local spec's weights are and what identifies them."""

    spec: ModelSpec
    directory: Path  # a transformers checkpoint folder (the converted cache for GGUF)
    fingerprint: str
    adapter: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # What the loaded model is called (default: the spec): an adapter trained on it records this as its base,
    # which is what the base check compares.
    name_or_path: str = ""


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(f"device {device!r}: no CUDA device is available")
    return device


def resolve_dtype(dtype: str, device: str):
    """bfloat16 on a GPU, float32 on the CPU (where bfloat16 matmuls are slow), unless asked otherwise."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise SpecError(f"dtype {dtype!r}: expected auto or one of {', '.join(sorted(_DTYPES))}")
    return getattr(torch, _DTYPES[dtype])


def resolve_checkpoint(spec: ModelSpec) -> Checkpoint:
    """Check a local spec and find (converting a GGUF if needed) the checkpoint it names, by its backend."""
    backend = backend_for(spec)
    if not backend.local:
        raise SpecError(f"model spec {spec.text!r}: not a local model")
    return backend.checkpoint(spec)


def load_checkpoint(checkpoint: Checkpoint, *, device: str = "auto", dtype: str = "auto", merge: bool = False):
    """Load (model, tokenizer); with ``merge`` a LoRA adapter is folded into the weights (faster inference)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # reading a converted checkpoint takes a second; the CLI has its own bars
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    tokenizer = _load_tokenizer(checkpoint)
    try:
        model = AutoModelForCausalLM.from_pretrained(checkpoint.directory, dtype=torch_dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise SpecError(f"model spec {checkpoint.spec.text!r}: cannot load {checkpoint.directory}: {_first_line(exc)}") from exc
    model.name_or_path = checkpoint.name_or_path or checkpoint.spec.text
    if checkpoint.adapter is not None:
        model = _attach_adapter(checkpoint, model, merge)
    model.to(device).eval()
    return model, tokenizer


def load_hf(spec: str | ModelSpec, *, device: str = "auto", dtype: str = "auto"):
    """(torch model, tokenizer) for training code; a peft spec gives a ``PeftModel`` with its adapter unmerged."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return load_checkpoint(resolve_checkpoint(parsed), device=device, dtype=dtype, merge=False)


def load_tokenizer(spec: str | ModelSpec):
    """The tokenizer a local spec's model is loaded with, without its weights (to compare vocabularies)."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return _load_tokenizer(resolve_checkpoint(parsed))


# ---- hf ----------------------------------------------------------------------


def hf_checkpoint(spec: ModelSpec) -> Checkpoint:
    directory = spec.path
    if not directory.is_dir():
        raise SpecError(f"model spec {spec.text!r}: {directory} is not a directory")
    if not (directory / "config.json").is_file():
        raise SpecError(f"model spec {spec.text!r}: {directory} has no config.json (not a transformers checkpoint)")
    weights = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    if not weights:
        raise SpecError(f"model spec {spec.text!r}: {directory} holds no *.safetensors or pytorch_model*.bin weights")
    return Checkpoint(spec, directory, sha256_files(weights), details={"weights": [w.name for w in weights]},
                      name_or_path=str(directory))


# ---- gguf --------------------------------------------------------------------


def gguf_checkpoint(spec: ModelSpec, gguf_path: Path) -> Checkpoint:
    if not gguf_path.is_file():
        raise SpecError(f"model spec {spec.text!r}: {gguf_path} does not exist")
    sha = sha256_file(gguf_path)
    # De-quantisation differs between transformers versions (seen: 5.17 vs 5.23 on gemma3), so a
    # conversion is only reused by the version that made it.
    converter = f"transformers-{importlib.metadata.version('transformers')}"
    directory = cache_dir() / "converted" / f"{sha}-{converter}"
    if not (directory / "config.json").is_file():  # a converted folder only exists complete (atomic rename)
        _check_gguf_architecture(spec, gguf_path)  # reading GGUF metadata takes seconds: only before converting
        _convert_gguf(spec, gguf_path, directory)
    return Checkpoint(spec, directory, sha, details={"gguf": str(gguf_path), "gguf_sha256": sha,
                                                     "converted_by": converter})


def _check_gguf_architecture(spec: ModelSpec, gguf_path: Path) -> None:
    import gguf
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    try:
        field_ = gguf.GGUFReader(gguf_path).fields["general.architecture"]
        architecture = field_.contents()
    except (KeyError, ValueError, OSError) as exc:
        raise SpecError(f"model spec {spec.text!r}: {gguf_path} is not a readable GGUF file ({_first_line(exc)})") from exc
    if architecture not in GGUF_SUPPORTED_ARCHITECTURES:
        raise SpecError(
            f"model spec {spec.text!r}: GGUF architecture {architecture!r} is not supported by transformers "
            f"(supported: {', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))})"
        )


def _convert_gguf(spec: ModelSpec, gguf_path: Path, directory: Path) -> None:
    """De-quantise once and save as safetensors.

    transformers will not ``save_pretrained`` a model loaded from GGUF (its
    config carries a GGUF quantization_config), so the model is rebuilt from
    a clean config and the de-quantised state dict, then saved with the
    tokenizer, all inside a temporary folder renamed into place at the end.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its tqdm bars would tear through the CLI's own progress display
    folder, name = gguf_path.parent, gguf_path.name
    try:
        with _quiet_gguf_reader():
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise SpecError(f"model spec {spec.text!r}: transformers cannot de-quantise {gguf_path}: {_first_line(exc)}") from exc
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    with torch.device("meta"):
        rebuilt = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    rebuilt.load_state_dict(loaded.state_dict(), assign=True)
    rebuilt.tie_weights()
    with atomic_dir(directory) as tmp:
        rebuilt.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps({"gguf": name, "sha256": sha256_file(gguf_path),
                                                     "converted_by": directory.name.split("-", 1)[1]}))


@contextmanager
def _quiet_gguf_reader():
    """transformers' GGUF reader draws its own tqdm bar, which its progress-bar switch does not reach: off here."""
    from functools import partial
    from unittest import mock

    from tqdm.auto import tqdm
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    with mock.patch.object(gguf_utils, "tqdm", partial(tqdm, disable=True)):
        yield


# ---- peft --------------------------------------------------------------------


def peft_checkpoint(spec: ModelSpec) -> Checkpoint:
    base = resolve_checkpoint(spec.base)
    adapter = spec.adapter
    config_path = adapter / "adapter_config.json"
    if not config_path.is_file():
        raise SpecError(f"model spec {spec.text!r}: {adapter} has no adapter_config.json (not a peft adapter)")
    weights = sorted(adapter.glob("adapter_model.safetensors")) or sorted(adapter.glob("adapter_model.bin"))
    if not weights:
        raise SpecError(f"model spec {spec.text!r}: {adapter} holds no adapter_model.safetensors")
    recorded_base = json.loads(config_path.read_text()).get("base_model_name_or_path") or ""
    _check_adapter_base(spec, base, recorded_base)
    adapter_sha = sha256_files([config_path, *weights])

    fingerprint = hashlib.sha256(f"base {base.fingerprint}\nadapter {adapter_sha}\n".encode()).hexdigest()
    details = {"base_fingerprint": base.fingerprint, "adapter_sha256": adapter_sha, "adapter": str(adapter),
               "adapter_base": recorded_base, **base.details}
    return Checkpoint(spec, base.directory, fingerprint, adapter=adapter, details=details, name_or_path=spec.base.text)


def _check_adapter_base(spec: ModelSpec, base: Checkpoint, recorded: str) -> None:
    """Refuse an adapter whose config names a different base we can recognise.

    A name we cannot recognise (a hub id of some other model family, a path
    from another machine) is let through: the weight shapes decide, when the
    adapter is attached.
    """
    if not recorded:
        return
    names = _names_of(recorded)
    if names is None:
        return
    if names & _names_of_checkpoint(base):
        return
    raise SpecError(f"model spec {spec.text!r}: the adapter was trained on {recorded!r}, not on {spec.base.text!r}")


def _names_of(name: str) -> set[str] | None:
    """Everything ``name`` is known by; None when it names nothing recognisable here."""
    from audit.models.local_backends import BUNDLED

    for bundled in BUNDLED.values():
        if name == bundled.alias or name in bundled.hub_ids:
            return {bundled.alias}
    try:
        parsed = parse_spec(name)
    except SpecError:
        parsed = None
    if parsed is not None and backend_for(parsed).adapter_base and parsed.path and parsed.path.exists():
        return {str(parsed.path.resolve())}
    if Path(name).exists():
        return {str(Path(name).resolve())}
    return None


def _names_of_checkpoint(checkpoint: Checkpoint) -> set[str]:
    spec = checkpoint.spec
    names = {spec.text, str(checkpoint.directory.resolve())}
    if spec.bundled:
        names.add(spec.bundled.alias)
    if spec.path is not None:
        names.add(str(spec.path.resolve()))
    return names


def _attach_adapter(checkpoint: Checkpoint, model, merge: bool):
    from peft import PeftModel

    try:
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; the user can do nothing about it
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = PeftModel.from_pretrained(model, checkpoint.adapter)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise SpecError(
            f"model spec {checkpoint.spec.text!r}: the adapter does not fit base {checkpoint.spec.base.text!r}: "
            f"{_first_line(exc)}"
        ) from exc
    return peft_model.merge_and_unload() if merge else peft_model


# ---- shared ------------------------------------------------------------------


def _load_tokenizer(checkpoint: Checkpoint):
    """The checkpoint's tokenizer, left-padding, with a pad token.

    A folder this tool converted from a GGUF holds a complete ``tokenizer.json``
    written by the fast tokenizer itself, so it is built straight from that
    file (see ``_converted_tokenizer``); any other checkpoint gets the class its
    config names.
    """
    from transformers import AutoTokenizer

    try:
        if "converted_by" in checkpoint.details:
            tokenizer = _converted_tokenizer(checkpoint.directory)
        else:
            tokenizer = AutoTokenizer.from_pretrained(checkpoint.directory)
    except (OSError, ValueError, KeyError) as exc:
        raise SpecError(f"model spec {checkpoint.spec.text!r}: no usable tokenizer in {checkpoint.directory}: {_first_line(exc)}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


# Keys of tokenizer_config.json that name how to load rather than what the tokenizer is.
_LOADER_KEYS = ("tokenizer_class", "backend", "is_local", "local_files_only")


def _converted_tokenizer(directory: Path):
    """A ``PreTrainedTokenizerFast`` built from tokenizer.json, its config and chat template.

    ``from_pretrained`` also parses the whole tokenizer.json in Python to
    collect its added tokens, which the Rust tokenizer has read already
    (gemma3's 262k-token vocabulary, fresh process: 2.8 s through
    ``from_pretrained``, 1.4-1.9 s this way, the Rust parse being most of it).
    tests/test_models_real.py checks ids, decoding, special tokens and the
    template against AutoTokenizer.
    """
    from transformers import PreTrainedTokenizerFast

    config = json.loads((directory / "tokenizer_config.json").read_text())
    for key in _LOADER_KEYS:
        config.pop(key, None)
    template = directory / "chat_template.jinja"
    if template.is_file():
        config["chat_template"] = template.read_text()
    return PreTrainedTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"), name_or_path=str(directory),
                                   **config)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
