"""The built-in suite's quality contract, private splits, sampling and the `probes` commands."""

import hashlib
import random
from collections import Counter
from importlib import resources

import pytest
from click.testing import CliRunner

from audit.cli import cli
from audit.probes import build_private_suite, list_suites, load_suite, sample_probes
from audit.probes import generate as gen
from audit.probes.checkers import validate_reference
from audit.probes.content import multilingual
from audit.probes.neardup import jaccard, near_duplicate_pairs, normalize, shingles
from audit.probes.sampling import allocate

CATEGORIES = {"style-format", "robustness", "domain-technical", "factual", "reasoning", "code", "instruction-following",
              "safety-refusal", "identity", "multilingual", "creative", "long-tail"}


@pytest.fixture(scope="module")
def suite():
    return load_suite("bbi-probes-v1")


@pytest.fixture(scope="module")
def private():
    return build_private_suite("correct horse battery staple")


# ---- the suite ----------------------------------------------------------------------------------------------


def test_exactly_5000_prompts_unique_after_normalising(suite):
    assert len(suite.probes) == 5000
    assert len({normalize(p.text) for p in suite.probes}) == 5000
    assert len({p.id for p in suite.probes}) == 5000
    assert all(p.id == gen.probe_id(p.text) for p in suite.probes)
    assert gen.probe_id("What  is\n2+2?") == gen.probe_id("what is 2+2?")


def test_categories_are_the_twelve_each_with_300_and_subcategories(suite):
    counts = Counter(p.category for p in suite.probes)
    assert set(counts) == CATEGORIES
    assert min(counts.values()) >= 300
    subcategories = Counter((p.category, p.subcategory) for p in suite.probes)
    for category in CATEGORIES:
        assert sum(1 for c, _ in subcategories if c == category) >= 4, category


def test_multilingual_has_at_least_five_languages(suite):
    texts = [p.text for p in suite.probes if p.category == "multilingual"]
    stems = {lang: add.split("{")[0] for lang, (add, _) in multilingual.ARITHMETIC.items() if add.split("{")[0]}
    present = {lang for lang, stem in stems.items() if any(stem in t for t in texts)}
    assert len(present) >= 5, present


def test_no_near_duplicates_except_declared_pairs(suite):
    probes = suite.probes
    pairs = near_duplicate_pairs([p.text for p in probes], threshold=0.9)
    undeclared = [(probes[i].text, probes[j].text) for i, j, _ in pairs
                  if probes[j].pair_of != probes[i].id and probes[i].pair_of != probes[j].id]
    assert undeclared == []


def test_near_duplicate_join_agrees_with_brute_force():
    rng = random.Random(3)
    words = [f"w{i}" for i in range(40)]
    texts = []
    for _ in range(120):
        base = [rng.choice(words) for _ in range(rng.randint(3, 60))]
        texts.append(" ".join(base))
        if rng.random() < 0.5:  # a near copy: one word changed or appended
            copy = list(base)
            copy[rng.randrange(len(copy))] = rng.choice(words) if rng.random() < 0.5 else copy[0]
            texts.append(" ".join(copy + ([rng.choice(words)] if rng.random() < 0.5 else [])))
    sets = [shingles(t) for t in texts]
    brute = {(i, j) for j in range(len(sets)) for i in range(j) if jaccard(sets[i], sets[j]) > 0.9}
    assert brute, "the corpus should contain near-duplicates"
    assert {(i, j) for i, j, _ in near_duplicate_pairs(texts)} == brute


def test_declared_pairs_point_at_their_original(suite):
    by_id = {p.id: p for p in suite.probes}
    paired = [p for p in suite.probes if p.pair_of]
    assert len(paired) >= 100
    for p in paired:
        original = by_id[p.pair_of]
        assert original.subcategory == p.subcategory and original.pair_of is None


def test_rebuild_is_byte_identical_to_the_shipped_file():
    data_dir = resources.files("audit.probes").joinpath("data")
    shipped = data_dir.joinpath("bbi-probes-v1.jsonl").read_bytes()
    recorded = data_dir.joinpath("bbi-probes-v1.jsonl.sha256").read_text().split()[0]
    rebuilt = gen.canonical_jsonl(gen.generate_probes())
    assert hashlib.sha256(rebuilt).hexdigest() == recorded == hashlib.sha256(shipped).hexdigest()
    assert rebuilt == shipped
    assert list_suites() == [{"name": "bbi-probes-v1", "version": gen.SUITE_VERSION, "n": 5000, "hash": recorded}]


def test_every_reference_is_checkable(suite):
    references = [p.reference for p in suite.probes if p.reference is not None]
    assert len(references) >= 2500
    assert [r for r in references if validate_reference(r)] == []
    assert {r["type"] for r in references} == {"number", "contains", "not_contains", "refusal", "constraints"}
    reasoning = [p for p in suite.probes if p.category == "reasoning"]
    assert all(p.reference is not None for p in reasoning)
    assert all(p.reference and p.reference["type"] == "constraints"
               for p in suite.probes if p.category == "instruction-following")


def test_prompts_are_short_enough_for_small_models(suite):
    lengths = [len(p.text) for p in suite.probes]
    assert sum(n <= 400 for n in lengths) / len(lengths) >= 0.98
    assert max(lengths) <= 4000
    assert any(n >= 2000 for n in lengths), "the very-long robustness inputs are missing"


# ---- private splits ------------------------------------------------------------------------------------------


def test_private_split_has_the_same_shape_and_shares_under_one_percent(suite, private):
    shape = Counter((p.category, p.subcategory) for p in suite.probes)
    assert Counter((p.category, p.subcategory) for p in private.probes) == shape
    public = {normalize(p.text) for p in suite.probes}
    shared = sum(normalize(p.text) in public for p in private.probes)
    assert shared / len(private.probes) < 0.01
    assert {p.split for p in private.probes} == {"private"} and private.source == "private"


def test_private_split_keeps_only_the_seed_hash(private):
    seed = "correct horse battery staple"
    assert private.private_seed_hash == hashlib.sha256(seed.encode()).hexdigest()
    assert seed not in repr(private)
    assert private.hash == gen.suite_hash(private.probes)


def test_generator_spaces_are_wide_even_without_exclusion(suite):
    """Independent of the exclusion of public prompts, another seed rarely repeats one."""
    other = gen.generate_probes(gen.private_seed("another secret"), split="private")
    public = {normalize(p.text) for p in suite.probes}
    assert sum(normalize(p.text) in public for p in other) / len(other) < 0.01


def test_private_split_is_deterministic_per_seed(private):
    again = build_private_suite("correct horse battery staple")
    assert again.hash == private.hash
    assert build_private_suite("a different seed").hash != private.hash


# ---- sampling -------------------------------------------------------------------------------------------------


def test_sampling_is_stratified_proportionally(suite):
    chosen = sample_probes(suite, 600, seed=1)
    assert len(chosen) == 600 and len({p.id for p in chosen}) == 600
    sizes = Counter(p.category for p in suite.probes)
    counts = Counter(p.category for p in chosen)
    for category, size in sizes.items():
        assert abs(counts[category] - 600 * size / 5000) < 1


def test_sampling_keeps_a_minimum_per_category(suite):
    chosen = sample_probes(suite, 30, seed=0, min_per_category=2)
    counts = Counter(p.category for p in chosen)
    assert len(chosen) == 30 and set(counts) == CATEGORIES and min(counts.values()) >= 2


def test_sampling_is_deterministic_and_seed_dependent(suite):
    first = [p.id for p in sample_probes(suite, 100, seed=7)]
    assert first == [p.id for p in sample_probes(suite, 100, seed=7)]
    assert first != [p.id for p in sample_probes(suite, 100, seed=8)]


def test_sampling_everything(suite):
    assert sample_probes(suite, None, seed=0) == suite.probes
    assert sample_probes(suite, 10_000, seed=0) == suite.probes


def test_allocation_edge_cases():
    assert allocate({"a": 1000, "b": 1}, 10, 2) == {"a": 9, "b": 1}
    assert allocate({"a": 90, "b": 5, "c": 5}, 10, 2) == {"a": 6, "b": 2, "c": 2}
    assert allocate({"a": 50, "b": 50}, 7, 2) in ({"a": 4, "b": 3}, {"a": 3, "b": 4})
    assert sum(allocate({"a": 3, "b": 3, "c": 3}, 2, 2).values()) == 2
    assert allocate({"a": 3, "b": 4}, 10, 2) == {"a": 3, "b": 4}


# ---- commands -------------------------------------------------------------------------------------------------


def run(*args, env=None):
    return CliRunner().invoke(cli, ["probes", *args], env=env)


def test_probes_commands_have_help():
    for command in ("list", "show", "stats", "build", "export"):
        result = run(command, "--help")
        assert result.exit_code == 0 and len(result.output) > 100, command


def test_probes_list_and_show_and_stats(suite):
    listed = run("list")
    assert listed.exit_code == 0 and suite.hash in listed.output and "5000" in listed.output
    shown = run("show", "bbi-probes-v1", "--category", "identity", "--limit", "3")
    assert shown.exit_code == 0 and len(shown.output.strip().splitlines()) == 3
    assert all("identity/" in line for line in shown.output.splitlines())
    stats = run("stats", "bbi-probes-v1")
    assert stats.exit_code == 0 and "median" in stats.output and "typo-pairs" in stats.output
    unknown = run("show", "bbi-probes-v1", "--category", "nope")
    assert unknown.exit_code == 1 and unknown.output.startswith("error: ") and "identity" in unknown.output


def test_probes_build_from_environment(tmp_path, private):
    out = tmp_path / "private.jsonl"
    result = run("build", "--secret-seed-env", "AUDIT_SEED", "--out", str(out),
                 env={"AUDIT_SEED": "correct horse battery staple"})
    assert result.exit_code == 0, result.output
    assert private.private_seed_hash in result.output and "correct horse" not in result.output
    assert load_suite(str(out)).hash == private.hash
    assert [p.name for p in tmp_path.iterdir()] == ["private.jsonl"]


def test_probes_build_warns_about_a_seed_on_the_command_line(tmp_path):
    result = run("build", "--secret-seed", "xyz", "--out", str(tmp_path / "p.jsonl"))
    assert result.exit_code == 0
    assert "shell history" in result.stderr and "shell history" not in result.stdout


def test_probes_build_refuses_a_missing_seed(tmp_path):
    missing = run("build", "--secret-seed-env", "NO_SUCH_VAR_XYZ", "--out", str(tmp_path / "p.jsonl"), env={"NO_SUCH_VAR_XYZ": ""})
    assert missing.exit_code == 1 and "NO_SUCH_VAR_XYZ" in missing.output
    neither = run("build", "--out", str(tmp_path / "p.jsonl"))
    assert neither.exit_code == 2
    assert not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_probes_export_round_trips(tmp_path, suite, fmt):
    out = tmp_path / f"suite.{fmt}"
    result = run("export", "bbi-probes-v1", "--out", str(out), "--format", fmt)
    assert result.exit_code == 0, result.output
    again = load_suite(str(out))
    assert again.hash == suite.hash and again.probes == suite.probes


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(gen.os, "replace", fail)
    with pytest.raises(OSError):
        gen.atomic_write(tmp_path / "out.jsonl", b"data")
    assert list(tmp_path.iterdir()) == []
