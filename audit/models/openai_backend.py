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
through ``_redact``).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any

from audit.errors import BackendError, ScoringUnsupported, SpecError
from audit.models.base import Description, Generation, GenParams
from audit.models.spec import ModelSpec

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 300.0  # a server asking for longer than this is down, not busy


class _PromptFailed(Exception):
    """One prompt failed for good; becomes ``Generation(error=...)``."""


class OpenAIModel:
    """Chat completions over httpx, ``concurrency`` requests in flight at most."""

    def __init__(self, spec: ModelSpec, *, concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 6,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0):
        import httpx

        self.spec = spec.text
        self.url, self.model_id, self.key_env = spec.url, spec.model, spec.key_env
        self.concurrency = max(1, concurrency)
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self._key = os.environ.get(spec.key_env) or None
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s,
                                    limits=httpx.Limits(max_connections=self.concurrency))
        self._fatal = threading.Event()
        self._check_endpoint()

    # ---- the Model interface -------------------------------------------------

    def generate(self, prompts: list[str], params: GenParams, samples: list[int] | None = None) -> list[Generation]:
        """One request per prompt, in parallel; answers in input order."""
        self._fatal.clear()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._answer(p, params), prompts))

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

    # ---- requests ------------------------------------------------------------

    def _check_endpoint(self) -> None:
        """One cheap GET /models: an unreachable endpoint, a refused key or an unknown model stop here."""
        import httpx

        try:
            response = self._client.get("/models")
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.spec}: cannot reach {self.url} ({type(exc).__name__}: {self._redact(str(exc))})") from exc
        self._raise_if_refused(response)
        if response.status_code != 200:
            return  # no /models route, or a transient failure: the requests themselves will tell
        try:
            served = [m["id"] for m in response.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        if served and self.model_id not in served:
            raise SpecError(f"{self.spec}: the endpoint serves {', '.join(served[:10])}, not {self.model_id!r}")

    def _answer(self, prompt: str, params: GenParams) -> Generation:
        body = self._request_body(prompt, params)
        started = time.perf_counter()
        try:
            data = self._post_with_retries(body)
            return self._generation(body, data, time.perf_counter() - started, params)
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

    def _post_with_retries(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        reason = ""
        for attempt in range(self.max_retries + 1):
            if self._fatal.is_set():
                raise _PromptFailed("not sent: the endpoint refused an earlier request")
            retry_after = None
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                reason = "timed out"
            except httpx.TransportError as exc:
                reason = f"connection failed ({type(exc).__name__})"
            else:
                self._raise_if_refused(response)
                if response.status_code == 200:
                    return _json_body(response)
                reason = f"HTTP {response.status_code}: {_snippet(response.text)}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise _PromptFailed(reason)
                retry_after = _retry_after_s(response)
            if attempt < self.max_retries:
                time.sleep(self._wait_s(attempt, retry_after))
        raise _PromptFailed(f"gave up after {self.max_retries + 1} attempts: {reason}")

    def _wait_s(self, attempt: int, retry_after: float | None) -> float:
        """The server's Retry-After when it gives one, else exponential backoff with equal jitter."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _raise_if_refused(self, response) -> None:
        if response.status_code in (401, 403):
            self._fatal.set()
            hint = f"set {self.key_env}" if self._key is None else f"check the key in {self.key_env}"
            raise BackendError(f"{self.spec}: the endpoint refused the request (HTTP {response.status_code}: "
                               f"{self._redact(_snippet(response.text))}); {hint}")

    def _generation(self, body: dict, data: dict, latency: float, params: GenParams) -> Generation:
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _PromptFailed(f"malformed reply from the endpoint: no choices[0].message ({_snippet(json.dumps(data))})") from exc
        usage = data.get("usage") or {}
        generation = Generation(
            text=text,
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason") or "stop",
            latency_s=latency,
            request=body,
            raw=json.loads(self._redact(json.dumps(data))),
        )
        _attach_logprobs(generation, choice.get("logprobs"), params)
        return generation

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _attach_logprobs(generation: Generation, logprobs: Any, params: GenParams) -> None:
    """OpenAI's ``choices[0].logprobs.content``: one entry per token with its top alternatives."""
    content = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    if not content:
        return
    generation.tokens = [entry.get("token", "") for entry in content]
    generation.logprobs = [float(entry.get("logprob", 0.0)) for entry in content]
    if params.top_logprobs:
        generation.top_logprobs = [
            {alt["token"]: float(alt["logprob"]) for alt in entry.get("top_logprobs") or []} for entry in content
        ]


def _json_body(response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise _PromptFailed(f"malformed JSON from the endpoint: {_snippet(response.text)!r}") from exc
    if not isinstance(data, dict):
        raise _PromptFailed(f"malformed reply from the endpoint: expected a JSON object, got {_snippet(response.text)!r}")
    return data


def _retry_after_s(response) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("retry-after")
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
