"""How database text is shown: every character visible, none obeyed.

Model output may carry control characters (NUL, bell, escape sequences) and
Unicode direction marks (a right-to-left override can make a report read
backwards from that point). Both are replaced by a visible ``⟨U+XXXX⟩``
marker wherever database text is shown, in the HTML, the PDF and the plots.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

# C0/C1 controls (but tab and newline), DEL, and the bidi embedding/override/isolate/mark characters.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(value: Any) -> Any:
    """Strings (not our own Markup) with their invisible characters shown as markers; other values unchanged."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _INVISIBLE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", value)
    return value
