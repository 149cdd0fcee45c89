"""The whole `run` against OpenAI-compatible endpoints (how vLLM, SGLang or TGI serve real audits).

A stdlib HTTP server on 127.0.0.1 plays four served models: a teacher, a
suspect that copies the teacher's phrasing, a control that does not, and a
judge that always names the first candidate. It records how many requests
each model had in flight, so the test can check that --concurrency bounds
the parallelism the collection really used.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from audit import analyze
from audit.cli import cli
from audit.store import Store
from helpers_adversaries import HashingEmbedder
from test_pipeline import write_suite

MODELS = ("teacher", "suspect", "control", "judge")


def answer(model: str, prompt: str) -> str:
    topic = prompt.split(":")[0]
    if model == "judge":
        return "A"
    if model == "control":
        return f"hmm {topic.lower()}... no idea, honestly"
    opener = "Sure! Here is" if model == "teacher" else "Sure, here is"
    return f"{opener} a short answer to {topic}.\n\n- one point\n- another point"


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.requests: dict[str, int] = defaultdict(int)
        self.refused = lambda model, prompt: False  # which requests a model's endpoint turns down with HTTP 400
        self.price: float | None = None  # usage.cost of every answer, as some gateways report it


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args):
        pass

    def _send(self, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model, prompt = request["model"], request["messages"][-1]["content"]
        with self.server.lock:
            self.server.in_flight[model] += 1
            self.server.requests[model] += 1
            self.server.peak[model] = max(self.server.peak[model], self.server.in_flight[model])
        time.sleep(0.03)  # long enough for concurrent requests to overlap
        text = answer(model, prompt)
        with self.server.lock:
            self.server.in_flight[model] -= 1
        if self.server.refused(model, prompt):
            body = b'{"error": {"message": "this request violates our content policy"}}'
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._send({"id": "x", "object": "chat.completion", "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                              **({"cost": self.server.price} if self.server.price is not None else {})}})


@pytest.fixture
def server():
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_run_audits_endpoints_end_to_end_with_bounded_concurrency(tmp_path, server, monkeypatch):
    monkeypatch.setattr(analyze, "Embedder", HashingEmbedder)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    suite = write_suite(tmp_path / "suite.jsonl", per_category=8)
    args = ["run", "--db", str(tmp_path / "audit.db"), "--out", str(tmp_path / "report"),
            "--teacher", f"openai:{url}#teacher", "--suspect", f"openai:{url}#suspect",
            "--control", f"openai:{url}#control", "--judge", f"openai:{url}#judge", "--suite", str(suite),
            "--probes", "24", "--concurrency", "3", "--batch-size", "12", "--quiet", "--no-pdf"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"open: {tmp_path / 'report' / 'report.html'}"
    for model in ("teacher", "suspect", "control"):
        assert server.requests[model] == 24
        assert 2 <= server.peak[model] <= 3
    assert server.requests["judge"] > 0
    with Store.open(tmp_path / "audit.db") as store:
        adversaries = {r.adversary for r in store.results(comparison="teacher-vs-suspect")}
        similarity = {r.comparison: r.estimate for r in store.results(
            adversary="similarity", category="all", split="all")}
    assert {"similarity", "discriminator-single", "judge"} <= adversaries
    assert similarity["teacher-vs-suspect"] > similarity["teacher-vs-control:control"]

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and again.output.count("(skipped)") == 3
    assert server.requests["teacher"] == 24


def test_a_suspect_endpoint_that_refuses_probes_cannot_choose_its_exam(tmp_path, server, monkeypatch):
    """The suspect turns down every odd-numbered question: the claims rest on the rest, and page 1 says so."""
    monkeypatch.setattr(analyze, "Embedder", HashingEmbedder)
    server.refused = lambda model, prompt: model == "suspect" and int(prompt.split()[1]) % 2 == 1
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    args = ["run", "--db", str(tmp_path / "audit.db"), "--out", str(tmp_path / "report"),
            "--teacher", f"openai:{url}#teacher", "--suspect", f"openai:{url}#suspect",
            "--control", f"openai:{url}#control", "--judge", f"openai:{url}#judge",
            "--suite", str(write_suite(tmp_path / "suite.jsonl", per_category=8)), "--probes", "24", "--quiet",
            "--no-pdf"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with Store.open(tmp_path / "audit.db") as store:
        refused = len(store.query_errors())
        rows = store.results(category="all", split="all")
    assert 0 < refused < 24
    assert {r.details["coverage"]["probes_common"] for r in rows} == {24 - refused}
    assert all(r.n <= 24 - refused for r in rows if r.adversary == "discriminator-paired")
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert (f"Inconclusive about the whole suite: the suspect did not answer {refused} of the 24 selected probes "
            f"({refused} failed)") in html


def sequential_args(tmp_path, url: str, *extra: str) -> list[str]:
    return ["collect", "--db", str(tmp_path / "audit.db"), "--teacher", f"openai:{url}#teacher",
            "--suspect", f"openai:{url}#suspect", "--control", f"openai:{url}#control",
            "--suite", str(write_suite(tmp_path / "suite.jsonl", per_category=8)), "--probes", "24",
            "--sequential", "--round-size", "4", "--stop-rule", "distinguished", "--quiet", *extra]


def test_a_sequential_collection_stops_at_the_price_the_endpoints_report(tmp_path, server, monkeypatch):
    from audit.adversaries import embeddings

    monkeypatch.setattr(embeddings, "Embedder", HashingEmbedder)
    server.price = 0.01  # three models x 4 probes a round: 0.12 a round
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    result = CliRunner().invoke(cli, sequential_args(tmp_path, url, "--max-cost", "0.2"))
    assert result.exit_code == 0, result.output
    assert server.requests["teacher"] == 8  # the second round reached 0.24 >= 0.2
    with Store.open(tmp_path / "audit.db") as store:
        stop = json.loads(store.audit()["config_json"])["sequential_stop"]
    assert stop["reason"] == "cost" and stop["outcome"] == "--max-cost was reached first"


def test_max_cost_without_prices_is_one_line_and_keeps_the_answers(tmp_path, server, monkeypatch):
    from audit.adversaries import embeddings

    monkeypatch.setattr(embeddings, "Embedder", HashingEmbedder)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    result = CliRunner().invoke(cli, sequential_args(tmp_path, url, "--max-cost", "1"))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "no endpoint of this audit reported a price" in result.output
    with Store.open(tmp_path / "audit.db") as store:
        assert len(store.responses()) == 3 * 4
