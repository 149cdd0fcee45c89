"""Any OpenAI-compatible chat endpoint (vLLM, SGLang, TGI, llama.cpp server, hosted APIs).

An audit sends thousands of requests, so transient failures are expected:
429, 5xx, timeouts and dropped connections are retried with exponential
backoff and jitter (or the server's Retry-After). A prompt that still fails
becomes an error ``Generation`` that collection records and retries on the
next run; only failures that no retry can fix for any prompt (unreachable at
start, 401/403) stop the run with a ``BackendError``.

The API key comes from an environment variable and goes only into the
``Authorization`` header: never into ``describe()``, the recorded request,
an error message or a log line (every text that leaves this module passes
through ``_redact``). An endpoint may reflect the key in its response, so every
string of a reply is redacted too, and the response notes that it was.

An endpoint is run by the party under audit, so its replies are hostile
input: a body is read up to ``MAX_REPLY_BYTES`` and refused if nested
deeper than ``MAX_JSON_DEPTH``; invalid UTF-8 and lone surrogates become
U+FFFD (noted); a malformed field is an error ``Generation``, never a crash.
With a ``deadline`` (collection's ``--max-seconds``), every request timeout
and retry wait is capped by the time left, and a prompt the deadline stops
comes back as ``Generation.stopped``, to be asked again by a later run.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from audit.errors import BackendError, ScoringUnsupported, SpecError
from audit.models.base import STOPPED_AT_DEADLINE, Description, Generation, GenParams, Model, prompt_seeds
from audit.models.registry import Backend
from audit.models.spec import ModelSpec
from audit.text import map_strings, nesting_depth, valid_unicode
from audit.topk import TopK

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 300.0  # a server asking for longer than this is down, not busy
# 4096 tokens with 20 top log-probabilities each take about 4 MB of JSON: a body past 32 MiB is not a response.
MAX_REPLY_BYTES = 32 << 20
MAX_JSON_DEPTH = 64  # a chat completion nests about 6 deep; deeper is refused before any recursive step
DEADLINE_SLACK_S = 0.01  # less time left than this is none: a request cannot finish in it
REDACTED = "[redacted]"


class _PromptFailed(Exception):
    """One prompt failed for good; becomes ``Generation(error=...)``."""


class _Stopped(Exception):
    """The deadline passed before the prompt was answered; becomes ``Generation.stopped``."""


class OpenAIModel(Model):
    """Chat completions over httpx, ``concurrency`` requests in flight at most."""

    def __init__(self, spec: ModelSpec, *, concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 6,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, deadline: float | None = None):
        """``deadline`` is a ``time.monotonic()`` value past which no request is sent, waited for or retried."""
        import httpx

        self.spec = spec.text
        self.url, self.model_id, self.key_env = spec.url, spec.model, spec.key_env
        self.concurrency = max(1, concurrency)
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.timeout_s, self.deadline = timeout_s, deadline
        self._key = os.environ.get(spec.key_env) or None
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s,
                                    limits=httpx.Limits(max_connections=self.concurrency))
        self._fatal = threading.Event()

    # ---- the Model interface -------------------------------------------------

    def generate(self, prompts: list[str], params: GenParams, seeds: list[int] | None = None,
                 samples: list[int] | None = None) -> list[Generation]:
        """One request per prompt, in parallel, each with its own ``seed``; responses in input order."""
        self._fatal.clear()
        own = [replace(params, seed=seed) for seed in prompt_seeds(prompts, params, seeds)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._respond, prompts, own))

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        raise ScoringUnsupported(
            f"{self.spec}: a chat completions endpoint cannot give log-probabilities of a given text")

    def describe(self) -> Description:
        return Description(
            spec=self.spec,
            backend="openai",
            fingerprint=f"{self.url}#{self.model_id}",
            details={"url": self.url, "model": self.model_id, "key_env": self.key_env,
                     "key_set": self._key is not None, "concurrency": self.concurrency},
        )

    def close(self) -> None:
        self._client.close()

    # ---- requests ------------------------------------------------------------

    def check_endpoint(self) -> None:
        """One cheap GET /models: an unreachable endpoint, a refused key or an unknown model stop here."""
        import httpx

        try:
            status, _, content = self._send("GET", "/models")
        except (_Stopped, _PromptFailed):
            return  # the deadline came first, or an oversized list: the requests themselves will tell
        except httpx.HTTPError as exc:
            if self._deadline_passed():
                return
            raise BackendError(f"{self.spec}: cannot reach {self.url} ({type(exc).__name__}: {self._redact(str(exc))})") from exc
        self._raise_if_refused(status, content)
        if status != 200:
            return  # no /models route, or a transient failure: the requests themselves will tell
        try:
            served = [str(m["id"]) for m in json.loads(content).get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return
        if served and self.model_id not in served:
            listed = self._redact(valid_unicode(_snippet(", ".join(served[:10]))))
            raise SpecError(f"{self.spec}: the endpoint serves {listed}, not {self.model_id!r}")

    def _respond(self, prompt: str, params: GenParams) -> Generation:
        body = self._request_body(prompt, params)
        started = time.perf_counter()
        try:
            data, replaced = self._post_with_retries(body)
            return self._generation(body, data, time.perf_counter() - started, params, replaced=replaced)
        except _Stopped:
            return Generation(finish_reason=STOPPED_AT_DEADLINE, latency_s=time.perf_counter() - started,
                              request=body, error="not answered before the --max-seconds deadline")
        except _PromptFailed as failure:
            return Generation(finish_reason="error", latency_s=time.perf_counter() - started, request=body,
                              error=self._redact(str(failure)))

    def _request_body(self, prompt: str, params: GenParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        if params.logprobs or params.top_logprobs:
            body["logprobs"] = True
            if params.top_logprobs:
                body["top_logprobs"] = params.top_logprobs
        return body

    def _post_with_retries(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The reply's JSON object, and whether invalid UTF-8 in it was replaced."""
        import httpx

        reason = ""
        for attempt in range(self.max_retries + 1):
            if self._fatal.is_set():
                raise _PromptFailed("not sent: the endpoint refused an earlier request")
            retry_after = None
            try:
                status, headers, content = self._send("POST", "/chat/completions", json=body)
            except httpx.TimeoutException:
                if self._deadline_passed():
                    raise _Stopped from None
                reason = "timed out"
            except httpx.RequestError as exc:  # a dropped connection, a protocol error, an undecodable body
                reason = f"request failed ({type(exc).__name__})"
            else:
                self._raise_if_refused(status, content)
                if status == 200:
                    return _json_body(content)
                reason = f"HTTP {status}: {_snippet(_decoded(content))}"
                if status not in RETRYABLE_STATUS:
                    raise _PromptFailed(reason)
                retry_after = _retry_after_s(headers)
            if attempt < self.max_retries:
                self._sleep(self._wait_s(attempt, retry_after))
        raise _PromptFailed(f"gave up after {self.max_retries + 1} attempts: {reason}")

    def _send(self, method: str, path: str, **kwargs) -> tuple[int, Any, bytes]:
        """(status, headers, body) of one request: the body read up to ``MAX_REPLY_BYTES``, the wait up to the
        deadline (httpx's timeouts bound each read, so a server trickling bytes is stopped between reads)."""
        with self._client.stream(method, path, timeout=self._request_timeout_s(), **kwargs) as response:
            content = bytearray()
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > MAX_REPLY_BYTES:
                    raise _PromptFailed(f"reply larger than {MAX_REPLY_BYTES:,} bytes from the endpoint")
                if self._deadline_passed():
                    raise _Stopped
            return response.status_code, response.headers, bytes(content)

    def _request_timeout_s(self) -> float:
        """The usual timeout, or the time left before the deadline when that is shorter."""
        if self.deadline is None:
            return self.timeout_s
        if self._deadline_passed():
            raise _Stopped
        return min(self.timeout_s, self.deadline - time.monotonic())

    def _deadline_passed(self) -> bool:
        return self.deadline is not None and self.deadline - time.monotonic() <= DEADLINE_SLACK_S

    def _sleep(self, seconds: float) -> None:
        """Wait before a retry, unless the deadline comes first: then stop now rather than wait for nothing."""
        if self.deadline is not None and time.monotonic() + seconds >= self.deadline:
            raise _Stopped
        time.sleep(seconds)

    def _wait_s(self, attempt: int, retry_after: float | None) -> float:
        """The server's Retry-After when it gives one, else exponential backoff with equal jitter."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _raise_if_refused(self, status: int, content: bytes) -> None:
        if status in (401, 403):
            self._fatal.set()
            hint = f"set {self.key_env}" if self._key is None else f"check the key in {self.key_env}"
            raise BackendError(f"{self.spec}: the endpoint refused the request (HTTP {status}: "
                               f"{self._redact(_snippet(_decoded(content)))}); {hint}")

    def _generation(self, body: dict, data: dict, latency: float, params: GenParams, *, replaced: bool) -> Generation:
        data, notes = self._cleaned(data)
        if replaced:
            notes["invalid_text_replaced"] = True
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _PromptFailed(f"malformed reply from the endpoint: no choices[0].message ({_snippet(json.dumps(data))})") from exc
        try:
            usage = data.get("usage") or {}
            generation = Generation(
                text=text,
                tokens_in=int(usage.get("prompt_tokens") or 0),
                tokens_out=int(usage.get("completion_tokens") or 0),
                finish_reason=_snippet(str(choice.get("finish_reason") or "stop"), 40),
                latency_s=latency,
                request=body,
                raw=data,
                notes=notes,
            )
            _attach_logprobs(generation, choice.get("logprobs"), params)
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
            raise _PromptFailed(f"malformed reply from the endpoint: unreadable usage or logprobs "
                                f"({_snippet(json.dumps(data))})") from exc
        return generation

    def _cleaned(self, data: dict) -> tuple[dict, dict[str, bool]]:
        """The reply with every string valid Unicode and the key redacted, and notes of what that changed."""
        notes: dict[str, bool] = {}

        def clean(text: str) -> str:
            valid = valid_unicode(text)
            redacted = self._redact(valid)
            if valid != text:
                notes["invalid_text_replaced"] = True
            if redacted != valid:
                notes["key_redacted"] = True
            return redacted

        return map_strings(data, clean), notes

    def _redact(self, text: str) -> str:
        return text.replace(self._key, REDACTED) if self._key else text


class OpenAIBackend(Backend):
    """``openai:http(s)://host:port/v1#model``: checked by one request, loaded without another."""

    name = "openai"

    def parse(self, text: str, rest: str) -> ModelSpec:
        return _parse_openai(text, rest)

    def check(self, spec: ModelSpec, deadline: float | None = None) -> None:
        """GET /models through a client of one connection, closed after it."""
        probe = OpenAIModel(spec, concurrency=1, deadline=deadline)
        try:
            probe.check_endpoint()
        finally:
            probe.close()

    def load(self, spec: ModelSpec, checked: None, *, device: str = "auto", dtype: str = "auto",
             concurrency: int = 8, deadline: float | None = None) -> OpenAIModel:
        return OpenAIModel(spec, concurrency=concurrency, deadline=deadline)


BACKEND = OpenAIBackend()


def _parse_openai(text: str, rest: str) -> ModelSpec:
    """``openai:URL#model``; ``?key_env=VAR`` may sit before or after the fragment.

    A spec is recorded in the database, the signed manifest and the report,
    so it must never hold a secret: credentials in the URL are refused, by a
    message that shows the URL without them.
    """
    url, _, fragment = rest.partition("#")
    model, _, fragment_query = fragment.partition("?")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        shown = f"openai:{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}#{model}"
        raise SpecError(f"model spec {shown!r}: credentials in the URL are refused (the spec is recorded in the "
                        f"database and the report); put the key in an environment variable and name it with "
                        f"?key_env=VAR (default DISTILL_AUDIT_API_KEY)")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SpecError(f"model spec {text!r}: expected openai:http(s)://host:port/v1#model")
    if not model:
        raise SpecError(f"model spec {text!r}: no model name after '#'")
    query = {k: v[-1] for k, v in parse_qs("&".join(q for q in (parts.query, fragment_query) if q)).items()}
    unknown = set(query) - {"key_env"}
    if unknown:
        raise SpecError(f"model spec {text!r}: unknown option(s) {', '.join(sorted(unknown))} (only key_env)")
    base_url = parts._replace(query="", fragment="").geturl().rstrip("/")
    return ModelSpec(text, "openai", url=base_url, model=model,
                     key_env=query.get("key_env", "DISTILL_AUDIT_API_KEY"), options=query)


def _attach_logprobs(generation: Generation, logprobs: Any, params: GenParams) -> None:
    """OpenAI's ``choices[0].logprobs.content``, when asked for: one entry per token with its top alternatives,
    at most ``max_new_tokens`` of them (an endpoint sending more is cut)."""
    content = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    if not content or not (params.logprobs or params.top_logprobs):
        return
    content = content[:params.max_new_tokens]
    generation.tokens = [str(entry.get("token", "")) for entry in content]
    generation.logprobs = [float(entry.get("logprob", 0.0)) for entry in content]
    if params.top_logprobs:
        alternatives = [(entry.get("top_logprobs") or [])[:params.top_logprobs] for entry in content]
        generation.top_k = TopK(tokens=[[str(alt["token"]) for alt in alts] for alts in alternatives],
                                logprobs=[[float(alt["logprob"]) for alt in alts] for alts in alternatives],
                                chosen_tokens=generation.tokens)
        generation.top_logprobs = generation.top_k.as_dicts()


def _decoded(content: bytes) -> str:
    return content.decode("utf-8", errors="replace")


def _json_body(content: bytes) -> tuple[dict[str, Any], bool]:
    """The reply's JSON object, decoded leniently: (object, whether invalid UTF-8 was replaced)."""
    try:
        text, replaced = content.decode("utf-8"), False
    except UnicodeDecodeError:
        text, replaced = _decoded(content), True
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _PromptFailed(f"malformed JSON from the endpoint: {_snippet(text)!r}") from exc
    if not isinstance(data, dict):
        raise _PromptFailed(f"malformed reply from the endpoint: expected a JSON object, got {_snippet(text)!r}")
    if nesting_depth(data) > MAX_JSON_DEPTH:
        raise _PromptFailed(f"malformed reply from the endpoint: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return data, replaced


def _retry_after_s(headers) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _snippet(text: str, limit: int = 200) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[:limit] + "..."
