"""The audit's words: one name per idea, the same in the code, the schema, the CLI, the report and the signature.

Every role, comparison, adversary, metric, judge verdict and purpose the
audit writes or reads is named here once; modules import these names instead
of spelling the strings again, so two spellings of one idea cannot drift
apart. ``GLOSSARY`` (word → one-line definition) is the source of truth for
DESIGN.md's glossary; ``RETIRED`` lists the words it replaced, and a test
checks that the report's templates and the database schema use no word
outside the glossary (and none it retired).
"""

from __future__ import annotations

# ---- roles: what an audited model is to the audit ----------------------------------------------------------------

TEACHER = "teacher"
SUSPECT = "suspect"
CONTROL = "control"
JUDGE = "judge"
ROLES = (TEACHER, SUSPECT, CONTROL, JUDGE)
AUDITED_ROLES = (TEACHER, SUSPECT, CONTROL)  # the models whose responses every claim rests on
CONTROL_PREFIX = CONTROL + ":"  # a control's model name: control:NAME


def control_model(control: str) -> str:
    """A control's model name in the audit (``control:NAME``) from its short name."""
    return CONTROL_PREFIX + control


# ---- comparisons: which two models an adversary tells apart ------------------------------------------------------


def comparison_name(other: str) -> str:
    """The comparison of the teacher with the model named ``other``: teacher-vs-suspect, teacher-vs-control:NAME."""
    return f"{TEACHER}-vs-{other}"


MAIN_COMPARISON = comparison_name(SUSPECT)  # the comparison every audit is about
CONTROL_COMPARISON_PREFIX = comparison_name(CONTROL_PREFIX)  # teacher-vs-control:NAME
PROVENANCE = "provenance"  # results only: Adv(teacher, control) against Adv(teacher, suspect), one control per row
EXPOSURE_PREFIX = "exposure:"  # results of a leakage run: a teacher's exposure policy itself, no second model


def student_pair(model: str, reference: str) -> str:
    """A leakage run's comparison of two students read on the same teacher responses: control:A-vs-control:B."""
    return f"{model}-vs-{reference}"


def control_comparison(control: str) -> str:
    """The comparison of the teacher with a control: teacher-vs-control:NAME."""
    return comparison_name(control_model(control))


def control_of(comparison: str) -> str | None:
    """The control a comparison (or a sequence's or a v1 predicate's ``provenance:NAME``) is about; None if none."""
    for prefix in (CONTROL_COMPARISON_PREFIX, PROVENANCE + ":"):
        if comparison.startswith(prefix):
            return comparison[len(prefix):]
    return None


def provenance_key(control: str) -> str:
    """How a sequence point and a signed (v1) predicate name one control's provenance comparison: provenance:NAME.

    The results table keeps the two apart (``comparison`` = provenance and
    ``control`` = NAME); sequence points and the predicate's claim identity
    kept the joined form, which signed reports and their verification rely on.
    """
    return f"{PROVENANCE}:{control}"


# ---- adversaries (the A of a claim) and the headline -------------------------------------------------------------

SIMILARITY = "similarity"
DISCRIMINATOR_SINGLE = "discriminator-single"
DISCRIMINATOR_PAIRED = "discriminator-paired"
JUDGE_FILTERED = "judge"
JUDGE_UNFILTERED = "judge-unfiltered"
TEACHER_LIKELIHOOD = "teacher-likelihood"
MMD = "mmd"
EXPOSURE = "exposure"
TEACHER_FORCED = "teacher-forced"
REFERENCE_CHECK = "reference-check"
HEADLINE = "headline"  # not an adversary: a results row's flag, and the v1 predicate's name for that row's A

ADVERSARY_CLASSES = {
    SIMILARITY: "semantic similarity of sentence embeddings (a baseline, not an adversary)",
    DISCRIMINATOR_SINGLE: "a learned discriminator that sees one response (sentence embedding + style features)",
    DISCRIMINATOR_PAIRED: "a learned discriminator that sees two responses and names the teacher's",
    JUDGE_FILTERED: "a pairwise LLM judge, counting only verdicts that survive swapping the A/B order",
    JUDGE_UNFILTERED: "a pairwise LLM judge over both A/B orders, its position bias cancelled (every pair)",
    TEACHER_LIKELIHOOD: "a test on responses' length-normalised likelihood under the teacher (a threshold on one "
                        "response; in a sequential audit, which of two it favours, over their opening tokens or whole)",
    MMD: "a two-sample MMD test on the response sets (no learning)",
    EXPOSURE: "no adversary: a measure of what a teacher's exposure policy exposes (leakage)",
    TEACHER_FORCED: "no adversary: a model's next-token distributions read on the teacher's own held-out responses, "
                    "against the teacher's recorded ones (leakage)",
    REFERENCE_CHECK: "no adversary: a model's responses read against their probes' machine-checkable references "
                     "(utility, leakage)",
}

# The judge mode of a judge row, as data: which verdict pairs it counts.
CONSISTENT_PAIRS = "consistent-pairs"
EVERY_PAIR = "every-pair"
JUDGE_MODES = {JUDGE_FILTERED: CONSISTENT_PAIRS, JUDGE_UNFILTERED: EVERY_PAIR}

# ---- metrics: what a results row's estimate measures -------------------------------------------------------------

ADVANTAGE = "advantage"
COSINE = "cosine"
MMD_STATISTIC = "mmd"
ADVANTAGE_GAP = "advantage-gap"
PREFERENCE = "preference"
CMI = "cmi"
TOP1_AGREEMENT = "top1-agreement"
KL_TO_TEACHER = "kl-to-teacher"
KL_DIFFERENCE = "kl-difference"
REFERENCE_ACCURACY = "reference-accuracy"

METRIC_NAMES = {
    ADVANTAGE: "distinguishing advantage",
    COSINE: "mean cosine similarity",
    MMD_STATISTIC: "MMD statistic",
    ADVANTAGE_GAP: "advantage gap, Adv(teacher, control) − Adv(teacher, suspect)",
    PREFERENCE: "teacher-likeness preference, P[suspect's response judged the more teacher-like than the "
                "control's] − P[the reverse]",
    CMI: "CMI plug-in estimate, nats per token",
    TOP1_AGREEMENT: "top-1 agreement with the raw teacher distribution (of an exposure, or of a model read on the "
                    "teacher's responses)",
    KL_TO_TEACHER: "KL(teacher ‖ model) on the teacher's recorded top-k buckets and tail, nats per token, read on "
                   "the teacher's own held-out responses",
    REFERENCE_ACCURACY: "the share of a model's responses that satisfy their probe's machine-checkable reference",
    KL_DIFFERENCE: "KL to the teacher of one student minus another's on the same tokens (negative: the first is "
                   "closer)",
}
GAP_METRICS = (ADVANTAGE_GAP, PREFERENCE)  # the provenance statistics

# ---- splits of a claim, and purposes of a query ------------------------------------------------------------------

ALL = "all"  # every category, or every split
PUBLIC = "public"
PRIVATE = "private"
SEQUENTIAL = "sequential"  # the split of a sequential audit's claims: the confidence sequences at its last round
EVAL = "eval"  # a query's purpose: evaluation, what claims rest on
TRAIN = "train"  # a query's purpose: the teacher's transcripts a student is distilled on
SEQUENTIAL_ORDER = "sequential-order"  # the selections purpose under which a pre-registered order is recorded

# ---- the judge: asking orders, positions, and the letters of its prompt ------------------------------------------

TEACHER_FIRST = "teacher-first"
TEACHER_SECOND = "teacher-second"
ORDERS = (TEACHER_FIRST, TEACHER_SECOND)
FIRST = "first"
SECOND = "second"
NONE = "none"  # no readable verdict: counted as a tie
POSITIONS = (FIRST, SECOND, NONE)
LETTERS = {"A": FIRST, "B": SECOND}  # how the prompt names the positions; only the prompt and its parser see them

# ---- exhibits: why the analysis chose a probe for the report to show in full (the exhibits' kind) ----------------

GIVEAWAY = "giveaway"  # the judge named the teacher's response in both orders
FOOLED = "fooled"  # the judge took the suspect's response for the teacher's in both orders
CATEGORY_EXHIBIT = "category"  # no judge verdicts: one probe from a category with the most evidence
EXHIBIT_KINDS = (GIVEAWAY, FOOLED, CATEGORY_EXHIBIT)

# ---- the glossary -------------------------------------------------------------------------------------------------

GLOSSARY = {
    "audit": "one investigation of one suspect against one claimed teacher, recorded in one database",
    "teacher": "the model the suspect is claimed to imitate (the claimed teacher)",
    "suspect": "the model suspected of being distilled from the teacher",
    "control": "a model known not to descend from the teacher: the yardstick of provenance (model name control:NAME)",
    "judge": "the language model that names which of two responses is the teacher's (a role and an adversary)",
    "role": "what a model is to the audit: teacher, suspect, control or judge",
    "model": "an audited or judging model, named by its spec; its name in the audit is its role (control:NAME)",
    "spec": "the one string that names a model in the CLI and config files (hf:, gguf:, peft:, openai:, replay:)",
    "fingerprint": "a model's identity: its weights' hash, or endpoint and model id",
    "suite": "a versioned, hashed set of probes (the distribution D a claim is relative to)",
    "probe": "one prompt of the suite, with its category and split",
    "category": "a probe's topic group; per-category claims are corrected for multiplicity",
    "split": "a probe's public or private (secret-seeded) part; a claim's split: all, public, private or sequential",
    "private seed hash": "sha256 of the secret seed of a private split; the seed itself is never stored",
    "purpose": "why a query was asked: eval (claims rest on it) or train (distillation transcripts)",
    "selection": "the probes chosen for an audit, per purpose, in order",
    "query": "one request to one model for one probe and sample; q counts them",
    "sample": "the index of one of several responses of a model to one probe",
    "response": "a model's output to a query (text, tokens, timing); never called an answer",
    "answer": "the one-line answer to the audit's question on page 1; never a model's output",
    "judgement": "one judge verdict on one pair of responses in one order",
    "order": "the order a pair was shown to the judge: teacher-first or teacher-second",
    "position": "the place a candidate was shown in (first or second); a verdict names a position, or none",
    "verdict": "the position the judge named: first, second or none (unreadable, a tie)",
    "flip rate": "the share of judged pairs whose verdicts are not A/B-consistent (they changed with the order, "
                 "or one could not be read): the judge's own rule, computed once in analysis",
    "first-position preference": "the share of readable verdicts that name the first position",
    "judge mode": "which pairs a judge row counts: consistent-pairs (judge) or every-pair (judge-unfiltered)",
    "comparison": "which two models an adversary tells apart: teacher-vs-suspect, teacher-vs-control:NAME, or "
                  "provenance (the two set against each other, per control)",
    "provenance": "the finding that compares Adv(teacher, suspect) with Adv(teacher, control)",
    "adversary": "a procedure that tries to tell two models apart (the A of a claim): similarity (the baseline), "
                 "discriminator-single, discriminator-paired, judge, judge-unfiltered, teacher-likelihood, mmd; "
                 "exposure, teacher-forced and reference-check mark a leakage run's measures, which are no "
                 "adversary",
    "adversary class": "an adversary in words, as the report and the signed predicate name it (ADVERSARY_CLASSES)",
    "headline": "the claim of the strongest adversary on teacher-vs-suspect, its interval paid for the choice "
                "(a results row's flag; its adversary is the one selected)",
    "metric": "what a results row's estimate measures: advantage, cosine, mmd, advantage-gap, preference, cmi, "
              "top1-agreement, kl-to-teacher, kl-difference, reference-accuracy",
    "estimate": "a results row's point estimate of its metric",
    "advantage": "the distinguishing advantage ε = |P[A says teacher | teacher] − P[A says teacher | suspect]| "
                 "(a metric, never a column holding other metrics)",
    "interval": "the confidence interval of an estimate (ci_low, ci_high at a confidence level, by a method)",
    "p-value": "the inversion of a row's own interval; p_holm and p_bh corrected over categories",
    "evidence rank": "a category's rank by evidence: Holm p-value, then lower bound, then estimate (one rule, "
                     "computed in analysis, read by the report)",
    "q": "queries per model a claim rests on (probes × samples); a budget point counts probes",
    "t": "the compute a claim spent: tokens in and out, wall and device seconds, FLOP",
    "coverage": "the probes every audited model answered, which every claim rests on, and what each model left out",
    "budget point": "an advantage at a number of probes per model (its probes column), for one acquisition strategy",
    "sequence point": "a confidence sequence's state at one round of a sequential audit",
    "cost": "the compute one stage spent on one subject",
    "artifact": "a file the audit wrote (report, plot, adapter), with its sha256",
    "embedding": "a sentence embedder's vector of a text, kept in the cache",
    "cache": "what the analysis computes once per text and keeps in the audit database, keyed by the text's hash "
             "and its source: an embedder's vectors, the teacher's log-likelihood of each response",
    "exposure": "what a teacher's exposure policy reveals (leakage runs): CMI and top-1 agreement",
    "claim": "a results row read for the report and the signed predicate: estimate, interval, n, q, t, A",
    "finding": "whether a claim's interval lies above, below or around zero",
    "predicate": "the signed in-toto statement's claims: the evaluation result the signature covers",
    "subcategory": "a finer topic group within a probe's category",
    "reference": "a probe's expected content (for checkers), or a teacher response the judge is shown as its voice",
    "pair": "the teacher's and another model's responses to one probe and sample, side by side",
    "baseline": "semantic similarity: reported beside the adversaries, never one of them",
    "similarity": "the cosine of two responses' sentence embeddings (the baseline)",
    "embedder": "the sentence-embedding model the similarity and the discriminators share",
    "strategy": "how a budget curve picks probes: stratified random or disagreement-guided",
    "threshold": "the ε₀ a certifying audit must stay under (ε ≤ ε₀ at the stated confidence)",
    "holm": "Holm's step-down correction over categories (p_holm)",
    "bh": "Benjamini–Hochberg's false-discovery-rate correction over categories (p_bh)",
    "round": "one step of a sequential audit: every model answers the next probes of the pre-registered order",
    "window": "the opening tokens of two responses a sequential audit's teacher-likelihood adversary compares: the "
              "first 4, 8, 16 or 32 tokens or the whole response, chosen from the probes before each one",
    "stage": "one step of the pipeline (collect, analyze, report, distill, ...) that a cost is booked to",
    "transcript": "a response or judgement with its content hash; the signed Merkle root covers them all",
    "exhibit": "a probe the report shows in full, with both transcripts and the judge's verdicts",
    "teacher forcing": "reading a model on the teacher's own response: its prompt, then the teacher's tokens, the "
                       "model's distribution at each position compared with the teacher's (leakage runs)",
    "fidelity": "how close a student's next-token distributions are to the teacher's, read by teacher forcing",
    "student": "a model distilled from the teacher's transcripts (distill, leakage runs)",
    "adapter": "the LoRA weights a distillation trains on a student's base model",
    "distill": "LoRA distillation of a student on the teacher's transcripts",
    "policy": "a teacher's exposure policy: what of its distribution it reveals (text, top-k, noise)",
    "utility": "what an exposure policy keeps of the teacher's use (top-1 agreement, checkable-reference "
               "accuracy), and what a student can do (its reference accuracy)",
    "signing": "the Ed25519 signature over the report's manifest (DSSE envelope)",
    "merkle root": "the hash over every transcript's content hash, in the signed statement",
    "backend": "the code that runs a model: transformers, OpenAI-compatible HTTP, or replay of an earlier audit",
    "subject": "what a cost is booked to: a model, the judge, the embedder, the analysis",
    "sequential audit": "an audit that asks probes in a pre-registered order, in rounds, and may stop early on "
                        "confidence sequences valid at every round",
    "manifest": "the list of the report's files and the database with their sha256, signed",
}

# Words that named an idea twice; the glossary's word replaced them (schema and templates must not use them).
RETIRED = {
    "secret_seed_hash": "private_seed_hash",  # the suites' column until schema step m007
    "letter": "position",
    "first_rate": "first_position_preference",
}


def glossary_table() -> str:
    """The glossary as a markdown table, for docs/design-changes.md (rendered there by cog; a test checks it)."""
    rows = [f"| {word} | {meaning} |" for word, meaning in GLOSSARY.items()]
    return "\n".join(["| word | meaning |", "| --- | --- |", *rows])
