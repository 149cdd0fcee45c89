"""The errors a user sees.

Every failure a user can cause or fix (a bad spec, an unreadable file, an
unreachable endpoint, a database from the future) is raised as an
``AuditError``: the CLI prints its message as one line and exits 1. Anything
else is a bug and keeps its traceback.
"""


class AuditError(Exception):
    """A failure to report to the user in one line: what, where, why."""


class SpecError(AuditError):
    """A model spec that cannot be resolved or loaded."""


class BackendError(AuditError):
    """A model backend failed while answering (endpoint down, 401, malformed reply)."""


class ScoringUnsupported(AuditError):
    """The backend cannot return token log-probabilities for given text."""


class SuiteError(AuditError):
    """A probe suite that cannot be read or fails validation."""


class StoreError(AuditError):
    """The audit database cannot be opened, migrated or written."""
