"""Server-side syntax highlighting of untrusted prompts and completions, and the diff between two completions.

Pygments escapes every token (``<``, ``>``, ``&``, quotes) as it formats, so its output is the only thing
here marked safe: raw model text never is.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import DiffLexer, TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

# Beyond this a lexer's cost is not worth it: very long text is shown plain (still escaped).
MAX_HIGHLIGHT_CHARS = 200_000
CSS_CLASS = "hl"

# Names a prompt may carry that Pygments knows by another alias.
_ALIASES = {"cpp": "c++", "shell": "bash", "sh": "bash", "js": "javascript", "ts": "typescript"}


@lru_cache(maxsize=64)
def _lexer_for(language: str) -> Lexer:
    name = (language or "").strip().lower()
    try:
        return get_lexer_by_name(_ALIASES.get(name, name), stripnl=False, ensurenl=True)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=True)


def lexer_name(language: str) -> str:
    """The lexer's display name, shown beside the code (e.g. "Python", "Text only")."""
    return _lexer_for(language).name


def _formatter() -> HtmlFormatter:
    # Inline line numbers keep one <pre>, so a long line scrolls the whole pane, numbers and all.
    return HtmlFormatter(cssclass=CSS_CLASS, linenos="inline", wrapcode=True)


def highlight_code(text: str, language: str) -> SafeString:
    """The text as highlighted, escaped HTML (``<div class="hl"><pre><code>...``)."""
    text = text or ""
    lexer = _lexer_for(language) if len(text) <= MAX_HIGHLIGHT_CHARS else TextLexer(stripnl=False)
    return mark_safe(highlight(text, lexer, _formatter()))  # noqa: S308 - Pygments escaped every token


def code_lines(text: str) -> list[str]:
    """The text's lines as the code panes show them: split at newlines only. ``str.splitlines`` would also
    split at U+2028, U+2029, form feeds and other separators, so the diff would cut lines the sides keep whole."""
    lines = re.split(r"\r\n|\r|\n", text or "")
    return lines[:-1] if lines[-1] == "" else lines


def unified_diff(left: str, right: str, *, left_label: str = "A (left)", right_label: str = "B (right)") -> str:
    """A unified diff from the left text to the right one, as plain text ("" when they are equal)."""
    lines = difflib.unified_diff(
        code_lines(left),
        code_lines(right),
        fromfile=left_label,
        tofile=right_label,
        lineterm="",
        n=3,
    )
    return "\n".join(lines)


def highlight_diff(left: str, right: str, **labels: str) -> SafeString:
    """The unified diff between two texts, highlighted as a diff; empty when the texts are equal."""
    diff = unified_diff(left, right, **labels)
    if not diff:
        return mark_safe("")
    lexer = DiffLexer(stripnl=False) if len(diff) <= MAX_HIGHLIGHT_CHARS else TextLexer(stripnl=False)
    return mark_safe(highlight(diff, lexer, HtmlFormatter(cssclass=CSS_CLASS + " diff")))  # noqa: S308


def stylesheet(style: str = "friendly") -> str:
    """CSS for the highlighted code; ``feedback/static/feedback/pygments.css`` was written with this."""
    return HtmlFormatter(style=style, cssclass=CSS_CLASS).get_style_defs(f".{CSS_CLASS}")
