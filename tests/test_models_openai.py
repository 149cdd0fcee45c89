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


def test_each_prompt_is_sent_with_its_own_seed(scripted):
    url, _, seen = scripted
    model = _model(url, concurrency=2)
    own = model.generate(["a", "b", "c"], GenParams(seed=5), seeds=[2**63 - 1, 7, 7])
    default = model.generate(["a", "b"], GenParams(seed=5))
    assert [g.request["seed"] for g in own + default] == [2**63 - 1, 7, 7, 5, 5] and len(seen) == 5


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
    assert (gen.top_k.tokens, gen.top_k.ids, gen.top_k.chosen_tokens) == ([["A", "B"]], None, ["A"])
    assert "top_logprobs" not in gen.as_response()["logprobs"]  # the blob holds them, not the JSON too


# ---- hostile or broken endpoints: secrets, bad text, huge or deep replies, the deadline ----------


def _body(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def test_credentials_in_an_endpoint_url_are_refused():
    for spec in ("openai:http://user:SECRET@127.0.0.1:1/v1#m", "openai:https://SECRET@h/v1#m?key_env=K"):
        with pytest.raises(SpecError, match="credentials in the URL are refused.*key_env=VAR") as err:
            parse_spec(spec)
        message = str(err.value)
        assert "SECRET" not in message and "\n" not in message and "h" in message


def test_key_reflected_by_the_endpoint_is_redacted_and_noted(scripted, with_key):
    url, script, _ = scripted
    reflected = {"choices": [{"message": {"content": f"your key is {KEY}!"}, "finish_reason": "stop"}],
                 "echo": {KEY: [f"Bearer {KEY}"]}}
    script += [(200, {}, _body(reflected)), (400, {}, f'{{"error": "bad key {KEY}"}}'.encode())]
    answered, failed = _model(url, concurrency=1).generate(["a", "b"], GenParams())
    assert answered.text == "your key is [redacted]!" and answered.notes == {"key_redacted": True}
    assert KEY not in json.dumps(answered.raw) and answered.raw["echo"] == {"[redacted]": ["Bearer [redacted]"]}
    assert "HTTP 400" in failed.error and KEY not in failed.error


def test_invalid_text_from_the_endpoint_becomes_replacement_characters(scripted):
    url, script, _ = scripted
    script += [(200, {}, b'{"choices": [{"message": {"content": "lone \\ud800 here"}}]}'),
               (200, {}, b'{"choices": [{"message": {"content": "bad \xff byte"}}]}')]
    surrogate, byte = _model(url, concurrency=1).generate(["a", "b"], GenParams())
    assert surrogate.text == "lone \ufffd here" and byte.text == "bad \ufffd byte"
    assert surrogate.notes == byte.notes == {"invalid_text_replaced": True}
    assert "\ud800" not in json.dumps(surrogate.raw, ensure_ascii=False)


def test_deep_huge_or_odd_replies_are_error_generations_not_crashes(scripted, monkeypatch):
    from audit.models import openai_backend

    monkeypatch.setattr(openai_backend, "MAX_REPLY_BYTES", 300_000)
    url, script, _ = scripted
    script += [(200, {}, b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
               (200, {}, b'{"choices": ' + b"[" * 200 + b"]" * 200 + b"}"),
               (200, {}, _body({"choices": [{"message": {"content": "x" * 400_000}}]})),
               (200, {}, _body({"choices": [{"message": {"content": ["not", "text"]}}]})),
               (200, {}, _body({"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": "many"}}))]
    gens = _model(url, concurrency=1).generate(list("abcde"), GenParams())
    assert gens[0].error.startswith("malformed JSON from the endpoint")
    assert gens[1].error == "malformed reply from the endpoint: JSON nested deeper than 64 levels"
    assert gens[2].error == "reply larger than 300,000 bytes from the endpoint"
    assert gens[3].error.startswith("malformed reply from the endpoint: no choices[0].message")
    assert gens[4].error.startswith("malformed reply from the endpoint: unreadable usage or logprobs")


def test_logprobs_nobody_asked_for_are_not_kept(scripted):
    url, script, _ = scripted
    content = [{"token": "A", "logprob": -0.1}] * 50
    script += [(200, {}, _ok_body("A", {"content": content})), (200, {}, _ok_body("A", {"content": content}))]
    model = _model(url, concurrency=1)
    [unasked] = model.generate(["a"], GenParams(max_new_tokens=4))
    [asked] = model.generate(["a"], GenParams(max_new_tokens=4, logprobs=True))
    assert unasked.logprobs is None and asked.logprobs == [-0.1] * 4


def test_a_retry_wait_past_the_deadline_stops_at_once(scripted):
    url, script, seen = scripted
    script += [(503, {"Retry-After": "30"}, b"{}")]
    started = time.monotonic()
    model = OpenAIModel(parse_spec(f"openai:{url}#m"), deadline=started + 2)
    [gen] = model.generate(["a"], GenParams())
    assert gen.stopped and gen.error and len(seen) == 1 and time.monotonic() - started < 1


def test_a_hung_request_is_cut_at_the_deadline_and_the_next_prompts_are_not_sent(scripted):
    url, script, seen = scripted
    script += [(200, {}, _ok_body("quick")), (200, {"X-Sleep": "5"}, _ok_body("never read"))]
    started = time.monotonic()
    model = OpenAIModel(parse_spec(f"openai:{url}#m"), concurrency=1, deadline=started + 1)
    gens = model.generate(["a", "b", "c"], GenParams())
    assert [g.text for g in gens[:1]] == ["quick"] and [g.stopped for g in gens] == [False, True, True]
    assert len(seen) == 2 and 0.9 < time.monotonic() - started < 2
