"""The demo audit's numbers, pinned: a refactor must leave every derived number of the demo where it was."""

from __future__ import annotations

import os

import pytest

from table_pin import check_pin

pytestmark = pytest.mark.real


def test_the_demo_table_is_pinned(tmp_path):
    os.environ["HF_HUB_OFFLINE"] = "1"
    from audit.pipeline import run_demo

    run_demo(tmp_path, quiet=True)
    check_pin(tmp_path / "audit.db", "demo_table", decimals=6)
