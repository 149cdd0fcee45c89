"""Advantage estimators with honest intervals, multiplicity corrections and two-sample tests.

Every number the audit states about an adversary leaves this package as an
`Estimate`: a point estimate, its interval, n, the confidence level, the
interval method and, where a test applies, a p-value. Choices, and why (each
module's docstring gives the details):

- **One procedure per row** (``estimate``). A row's p-value is the inversion
  of its own interval: the smallest α at which the two-sided interval
  excludes 0. So p < α exactly when the interval excludes 0, and a reader
  never sees the two disagree.
- Counts of independent correct verdicts get **exact** Clopper–Pearson
  intervals with the exact binomial test they invert (``exact``).
- Verdicts of a cross-validated adversary are not independent, so they get a
  **permutation interval**: the adversary retrained in worlds where the null
  hypothesis is made true (``permutation``).
- Statistics over probes without a test (mean cosine) get a **bootstrap over
  probes**, never over individual responses (``bootstrap``); a pooled mean over
  tokens of skewed values (fidelity) gets a studentized one (``pooled_mean_ci``).
- Two sets of embeddings are compared by a kernel two-sample test, MMD
  (``two_sample``).
- Choosing the best of several adversaries is itself a multiple comparison;
  the headline bound pays for it (Bonferroni) or selects on data it does not
  report (held-out split); per-category p-values get Holm and BH
  (``multiplicity``).

Only numpy, scipy and statsmodels; scipy and statsmodels are imported where
they are used, so importing this package stays cheap. The resampling is
written here rather than taken from ``scipy.stats`` where scipy cannot do
what the audit needs (ragged probes, retrained adversaries, small-n
widening) and would draw from the generator in another order, moving every
pinned number of an audit for no gain in validity.
"""

from audit.stats.bootstrap import MIN_BOOTSTRAP_PROBES, bootstrap_ci, pooled_mean_ci
from audit.stats.estimate import Estimate, at_confidence, excludes
from audit.stats.exact import accuracy_advantage, clopper_pearson
from audit.stats.multiplicity import (bonferroni, correct_pvalues, estimate_gap, headline_bound, holm_interval,
                                      rank_by_evidence)
from audit.stats.permutation import (DIGITS, PERMUTATIONS, inverted_pvalue, permutation_interval, share_interval,
                                     sign_flip_null)
from audit.stats.two_sample import mmd_permutation_test

__all__ = [
    "DIGITS", "MIN_BOOTSTRAP_PROBES", "PERMUTATIONS", "Estimate", "accuracy_advantage", "at_confidence",
    "bonferroni", "bootstrap_ci", "clopper_pearson", "correct_pvalues", "estimate_gap", "excludes",
    "headline_bound", "holm_interval", "inverted_pvalue", "mmd_permutation_test", "permutation_interval",
    "pooled_mean_ci", "rank_by_evidence", "share_interval", "sign_flip_null",
]
