"""The adversary classes A of the audit's (ε, q, t, A) claims, one module each.

- ``similarity``: mean cosine of teacher and other responses (the baseline, metric ``cosine``);
- ``discriminator``: logistic regression on embeddings + ``features`` (style), single and paired;
- ``judge``: the pairwise teacher-identification LLM judge, both A/B orders;
- ``likelihood``: a threshold on the response's mean log-probability under the teacher;
- ``mmd``: a kernel two-sample test on embeddings (metric ``mmd``).

``comparison`` aligns the teacher's and another model's responses, ``embeddings``
computes and caches the sentence embeddings, and ``outcome`` holds each
adversary's held-out verdicts, from which ``audit.analyze`` derives every row.
"""
