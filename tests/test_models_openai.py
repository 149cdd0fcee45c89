"""The OpenAI-compatible backend against a real server (llm-katan, echo backend) and a scripted one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from audit.errors import BackendError, ScoringUnsupported, SpecError
from audit.models import GenParams, load_model, parse_spec
from audit.models.openai_backend import OpenAIModel

KATAN = Path(sys.executable).parent / "llm-katan"
KEY = "s3cret-test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = {  # name: llm-katan failure-simulation flags; all share one start-up, in parallel
    "plain": ["--validate-keys", "--api-keys", f"openai={KEY}"],
    "flaky": ["--error-rate", "0.3"],
    "rate-limited": ["--rate-limit-after", "3"],
    "gateway-timeout": ["--timeout-after", "1"],
}


@pytest.fixture(scope="module")
def katan(tmp_path_factory):
    """``llm-katan --backend echo`` servers on 127.0.0.1, one per entry of SERVERS; yields name -> base URL."""
    stats = tmp_path_factory.mktemp("katan")
    procs, urls = [], {}
    for name, flags in SERVERS.items():
        port = _free_port()
        procs.append(subprocess.Popen(
            [str(KATAN), "--model", "echo-model", "--backend", "echo", "--host", "127.0.0.1", "--port", str(port),
             "--disable-dashboard", "--log-level", "warning", "--stats-file", str(stats / f"{name}.json"), *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        urls[name] = f"http://127.0.0.1:{port}/v1"
    try:
        for url in urls.values():
            _wait_until_up(url)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def _wait_until_up(url: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(f"{url}/models", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"llm-katan at {url} did not start")


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv("DISTILL_AUDIT_API_KEY", KEY)


def _model(url: str, **kwargs) -> OpenAIModel:
    """A backend with short backoffs, so retry tests take a fraction of a second."""
    return OpenAIModel(parse_spec(f"openai:{url}#echo-model"), backoff_s=0.01, max_backoff_s=0.05, **kwargs)


def test_answers_in_order_with_usage(katan, with_key):
    url = katan["plain"]
    model = load_model(f"openai:{url}#echo-model", concurrency=4)
    prompts = [f"question number {i}" for i in range(10)]
    gens = model.generate(prompts, GenParams(max_new_tokens=16))
    assert all(g.error is None for g in gens)
    assert [g.text.splitlines()[-1] for g in gens] == [f"User: {p}" for p in prompts]
    assert all(g.tokens_in == 3 and g.tokens_out > 0 and g.finish_reason == "stop" for g in gens)
    assert gens[0].request["messages"] == [{"role": "user", "content": prompts[0]}]
    assert KEY not in json.dumps([g.request for g in gens] + [g.raw for g in gens])
    d = model.describe()
    assert (d.backend, d.fingerprint, d.details["key_set"]) == ("openai", f"{url}#echo-model", True)
    assert KEY not in json.dumps(d.as_dict())
    with pytest.raises(ScoringUnsupported):
        model.score("a", ["b"])


def test_retries_recover_from_random_500s(katan, with_key):
    model = _model(katan["flaky"], max_retries=10)
    gens = model.generate([f"p{i}" for i in range(20)], GenParams())
    assert [g.error for g in gens] == [None] * 20


def test_permanent_429_becomes_error_generations(katan, with_key):
    model = _model(katan["rate-limited"], max_retries=2, concurrency=1)
    gens = model.generate([f"p{i}" for i in range(5)], GenParams())
    assert [g.error is None for g in gens] == [True, True, True, False, False]
    assert "gave up after 3 attempts: HTTP 429" in gens[3].error
    assert gens[3].finish_reason == "error" and gens[3].request["messages"][0]["content"] == "p3"


def test_gateway_timeouts_504_are_error_generations(katan, with_key):
    model = _model(katan["gateway-timeout"], max_retries=1, concurrency=1)
    gens = model.generate(["a", "b"], GenParams())
    assert gens[0].error is None and "HTTP 504" in gens[1].error


def test_wrong_key_is_401_backend_error_without_the_key(katan, monkeypatch):
    wrong = "wrong-key-that-must-not-leak"
    monkeypatch.setenv("MY_KEY", wrong)
    with pytest.raises(BackendError, match="HTTP 401") as err:
        load_model(f"openai:{katan['plain']}#echo-model?key_env=MY_KEY")
    assert wrong not in str(err.value) and "MY_KEY" in str(err.value) and "\n" not in str(err.value)


def test_missing_key_is_401_backend_error(katan, monkeypatch):
    monkeypatch.delenv("DISTILL_AUDIT_API_KEY", raising=False)
    with pytest.raises(BackendError, match="refused.*set DISTILL_AUDIT_API_KEY"):
        load_model(f"openai:{katan['plain']}#echo-model")


def test_unknown_model_is_a_spec_error(katan, with_key):
    with pytest.raises(SpecError, match="serves echo-model, not 'gpt-9'"):
        load_model(f"openai:{katan['plain']}#gpt-9")


def test_unreachable_endpoint_is_a_backend_error():
    with pytest.raises(BackendError, match="cannot reach http://127.0.0.1:"):
        load_model(f"openai:http://127.0.0.1:{_free_port()}/v1#m")


# ---- a scripted server: exact status sequences, headers and bodies -------------


@pytest.fixture
def scripted():
    """A local server answering POST /v1/chat/completions from a script of (status, headers, body)."""
    script: list[tuple[int, dict, bytes]] = []
    seen: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._reply(404, {}, b"{}")

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(time.monotonic())
            status, headers, body = script.pop(0) if script else (200, {}, _ok_body("done"))
            time.sleep(float(headers.get("X-Sleep", 0)))
            self._reply(status, headers, body)

        def _reply(self, status, headers, body):
            self.send_response(status)
            for k, v in headers.items():
                if k != "X-Sleep":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test): nothing to answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1", script, seen
    server.shutdown()


def test_client_timeouts_are_retried_then_reported(scripted):
    url, script, seen = scripted
    script += [(200, {"X-Sleep": "0.6"}, _ok_body("late"))] * 2
    [gen] = _model(url, max_retries=1, timeout_s=0.2).generate(["slow"], GenParams())
    assert gen.error == "gave up after 2 attempts: timed out" and len(seen) == 2


def _ok_body(text: str, logprobs=None) -> bytes:
    return json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "length", "logprobs": logprobs}],
                       "usage": {"prompt_tokens": 4, "completion_tokens": 2}}).encode()


def test_malformed_json_is_a_clear_error_generation(scripted):
    url, script, _ = scripted
    script += [(200, {}, b"<html>definitely not json"), (200, {}, b'{"choices": []}')]
    model = _model(url, concurrency=1)
    gens = model.generate(["a", "b", "c"], GenParams())
    assert gens[0].error.startswith("malformed JSON from the endpoint: '<html>definitely not json'")
    assert gens[1].error.startswith("malformed reply from the endpoint: no choices[0].message")
    assert (gens[2].text, gens[2].error, gens[2].finish_reason, gens[2].tokens_out) == ("done", None, "length", 2)


def test_retry_after_is_honoured(scripted):
    url, script, seen = scripted
    script += [(429, {"Retry-After": "0.5"}, b"{}"), (503, {}, b"{}")]
    model = _model(url)
    [gen] = model.generate(["a"], GenParams())
    assert gen.text == "done" and len(seen) == 3
    assert seen[1] - seen[0] >= 0.5 > seen[2] - seen[1]


def test_client_errors_are_not_retried(scripted):
    url, script, seen = scripted
    script += [(400, {}, b'{"error": {"message": "context too long"}}')]
    [gen] = _model(url).generate(["a"], GenParams())
    assert "HTTP 400" in gen.error and "context too long" in gen.error and len(seen) == 1


def test_logprobs_and_top_logprobs_are_read(scripted):
    url, script, _ = scripted
    content = [{"token": "A", "logprob": -0.1, "top_logprobs": [{"token": "A", "logprob": -0.1},
                                                                 {"token": "B", "logprob": -2.4}]}]
    script += [(200, {}, _ok_body("A", {"content": content}))]
    [gen] = _model(url).generate(["which?"], GenParams(max_new_tokens=1, logprobs=True, top_logprobs=2))
    assert gen.request["logprobs"] is True and gen.request["top_logprobs"] == 2
    assert (gen.tokens, gen.logprobs, gen.top_logprobs) == (["A"], [-0.1], [{"A": -0.1, "B": -2.4}])
