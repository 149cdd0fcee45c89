"""The teacher's scores of responses: the whole-response mean and the opening windows, cached once."""

from __future__ import annotations

import numpy as np
import pytest

from audit.adversaries.likelihood import OPENING_WINDOWS, TeacherScorer
from audit.store import Store


class CountingTeacher:
    """Scores the i-th token of a response (a word) as −(i + 1)/10, and counts the responses it scored."""

    def __init__(self):
        self.scored = 0

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        self.scored += len(continuations)
        return [[-(i + 1) / 10 for i in range(len(text.split()))] for text in continuations]


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "audit.db")
    yield s
    s.close()


def test_each_opening_window_is_the_mean_over_its_first_tokens(store):
    teacher = CountingTeacher()
    scorer = TeacherScorer(store, teacher, "fp", None)
    long, short = " ".join(["w"] * 40), "a b"
    scores = scorer.opening_logprobs(["p", "p"], [long, short])
    assert scores.shape == (2, 1 + len(OPENING_WINDOWS))
    expected_long = [-(40 + 1) / 20] + [-(w + 1) / 20 for w in OPENING_WINDOWS]
    assert scores[0] == pytest.approx(expected_long, rel=1e-6)
    assert scores[1] == pytest.approx([-0.15] * (1 + len(OPENING_WINDOWS)), rel=1e-6)  # shorter than every window
    assert scorer.mean_logprobs(["p"], [long]) == pytest.approx([scores[0, 0]])
    assert teacher.scored == 2  # the mean is read from the same cached entry


def test_an_entry_from_before_the_windows_serves_the_mean_and_is_scored_again_for_the_windows(store):
    teacher = CountingTeacher()
    scorer = TeacherScorer(store, teacher, "fp", None)
    scorer.mean_logprobs(["p"], ["a b c"])
    [key] = _keys(store)
    store.cache("teacher-loglik:fp", {key: [-6.0, 3.0]})  # as an earlier version kept it: sum and tokens only
    teacher.scored = 0
    assert scorer.mean_logprobs(["p"], ["a b c"]) == pytest.approx([-2.0])
    assert teacher.scored == 0
    assert scorer.opening_logprobs(["p"], ["a b c"])[0, 0] == pytest.approx(-0.2)
    assert teacher.scored == 1
    assert len(store.cached("teacher-loglik:fp", [key])[key]) == 2 + len(OPENING_WINDOWS)


def test_a_score_computed_now_equals_the_one_read_back_later(store):
    """The cache keeps float32; a first run must see what a rerun reads, or a near-tie could change sign."""
    scorer = TeacherScorer(store, CountingTeacher(), "fp", None)
    fresh = scorer.opening_logprobs(["p"], [" ".join(["w"] * 7)])
    again = TeacherScorer(store, None, "fp", None).opening_logprobs(["p"], [" ".join(["w"] * 7)])
    assert np.array_equal(fresh, again)


def _keys(store: Store) -> list[str]:
    return [row[0] for row in store.db.execute("select key from cache")]


def test_a_cached_score_that_is_not_a_number_is_one_line(store):
    from audit.errors import AuditError

    scorer = TeacherScorer(store, CountingTeacher(), "fp", None)
    scorer.mean_logprobs(["p"], ["a b c"])
    [key] = _keys(store)
    store.cache("teacher-loglik:fp", {key: [float("nan"), 3.0]})
    with pytest.raises(AuditError, match="teacher-likelihood cache holds a value that is not a finite number"):
        scorer.mean_logprobs(["p"], ["a b c"])
