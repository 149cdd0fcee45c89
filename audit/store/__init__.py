"""The audit database: schema, migrations, integrity hashes, and the only code that writes SQL.

``schema`` holds the migration steps, ``integrity`` what each content hash
covers, ``connection`` how a file is opened, checked, copied and set aside,
and ``store`` with ``derived`` the ``Store`` that records and reads an audit.
"""

from audit.errors import StoreError
from audit.store.connection import set_aside
from audit.store.integrity import (canonical_json, content_hash, judgement_record, merkle_root, sha256_text,
                                   transcript_record)
from audit.store.schema import SCHEMA_MIGRATIONS
from audit.store.store import Store

__all__ = ["SCHEMA_MIGRATIONS", "Store", "StoreError", "canonical_json", "content_hash", "judgement_record",
           "merkle_root", "set_aside", "sha256_text", "transcript_record"]
