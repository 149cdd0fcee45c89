"""Text from outside (endpoints, models, received databases): made safe to store and to print.

Two boundaries, one function each:

- where text enters, ``valid_unicode`` replaces what is not a character (a
  lone surrogate, which JSON can spell ``"\\ud800"``) with U+FFFD, because
  neither UTF-8, nor SQLite, nor the content hashes can hold one;
- where text leaves for a terminal (error lines, summaries, progress bars),
  ``for_terminal`` removes escape sequences and control characters, so an
  endpoint's error body cannot retitle the window (OSC 0), write the
  clipboard (OSC 52), move the cursor, clear the screen or reorder the line.

``nesting_depth`` lets a reader refuse JSON nested deeper than any real
document before a recursive step (``json.dumps``, a walk) runs out of stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# ECMA-48 escape sequences, 7-bit (ESC ...) and 8-bit (C1) forms: a control string (OSC, DCS, SOS, PM, APC)
# up to its terminator (BEL or ST), a CSI sequence up to its final byte, then any other ESC sequence.
_SEQUENCE = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c)"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b[ -/]*[0-~]",
    re.DOTALL,
)
# What is left that a terminal obeys rather than shows: C0 and C1 controls but tab and newline, DEL, and the
# bidirectional embedding/override/isolate/mark characters (they can make a line read in another order).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def for_terminal(text: str) -> str:
    """``text`` with every escape sequence and control character removed (newlines and tabs kept)."""
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def valid_unicode(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (a paired one was already joined by the decoder)."""
    return _SURROGATE.sub("\ufffd", text)


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """A copy of decoded JSON with ``change`` applied to every string, keys included (check the depth first)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {change(key): map_strings(item, change) for key, item in value.items()}
    return value


def nesting_depth(value: Any) -> int:
    """How deeply lists and dicts nest in decoded JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
