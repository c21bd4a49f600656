"""What leaves codepref in a dataset: volunteers only as salted pseudonyms, text with secrets masked.

Masking uses detect-secrets' plugins (all of them, as ``default_settings()`` enables) and its filters,
line by line, plus an e-mail pattern and whole private-key blocks. Found values become ``<EMAIL>``,
``<SECRET>`` or ``<PRIVATE_KEY>``, and every mask is counted by type for the manifest.

Running 27 plugins on every line of a million completions would take hours, so a text (then each line
of it) is first passed through a cheap gate; only what the gate lets through is scanned. With the
google-re2 package one DFA pass over the text decides for most texts (a few microseconds); the
byte-level checks below then decide the rest, and alone give the same answers without it. The gate looks
for what those plugins need to fire: an ``@`` or ``://``; a keyword (password, secret, key, token,
auth, ...); a run of 20 or more token characters (every vendor token format and long random string);
a quoted run of 9 or more hex digits (the hex-entropy plugin's shortest hit); or a dotted quad.
Known gaps, for the data card: short vendor tokens under 20 characters outside a keyword assignment
(for example a bare Artifactory ``AP...`` key of 11 characters) are not scanned.

detect-secrets' own ``scan_line`` is made for ad-hoc strings: it runs the entropy plugins "eagerly",
reporting every unquoted word ("return", "values") as a secret. Here the plugins run as they do on a
file (``enable_eager_search=False``: entropy only on quoted strings, above the configured limits).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from contextlib import ExitStack

from django.conf import settings

EMAIL_MASK = "<EMAIL>"
SECRET_MASK = "<SECRET>"
PRIVATE_KEY_MASK = "<PRIVATE_KEY>"

EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)", re.DOTALL
)
# Characters a secret token is made of: a found value is widened to the whole token around it, since some
# plugins report only part of a match (the GitHub plugin reports "ghp", not the token).
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-.~")

# The gate (see the module docstring). Texts are translated to a small alphabet (token letters -> "a",
# digits -> "d", quotes -> "q", "." kept, the rest -> " ") so that the checks are C-level byte searches.
_KEYWORD_STEMS = ("passw", "pwd", "secret", "contrase")  # detect-secrets' keyword list, by its stems
_KEYWORD_RE = re.compile(
    r"(?:api|auth|service|account|db|database|priv|private|client)_?key|(?:db|database|key)_?pass"
)
_LOCAL_PART_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")


def _alphabet_table() -> bytes:
    table = bytearray(b" " * 256)
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/=_-":
        table[byte] = ord("a")
    for byte in range(128, 256):  # parts of non-ASCII letters
        table[byte] = ord("a")
    for byte in b"0123456789":
        table[byte] = ord("d")
    table[ord(".")] = ord(".")
    table[ord("'")] = table[ord('"')] = ord("q")
    return bytes(table)


_ALPHABET = _alphabet_table()
_DIGITS_AS_LETTERS = bytes.maketrans(b"d", b"a")
_LONG_RUN = b"a" * 20
_RUN_REST_RE = re.compile(rb"a*")
_QUOTED_RUN_RE = re.compile(rb"q([ad]{9,})q")
_DOTTED_QUAD_RE = re.compile(rb"d{1,3}\.d{1,3}\.d{1,3}\.d{1,3}")
# Vendor token prefixes: a long run starting with one is scanned even with few digits.
_VENDOR_PREFIXES = (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"A3T", b"gh", b"gl", b"xox", b"sk", b"rk", b"SG", b"eyJ",
                    b"sq0", b"pypi", b"AKC", b"AP", b"AC", b"SK", b"npm_")  # fmt: skip


def pseudonym(user_id: int, *, salt: str | None = None) -> str:
    """A stable, salted stand-in for a volunteer: the same user gets the same one while the salt stays."""
    key = (settings.CODEPREF["PSEUDONYM_SALT"] if salt is None else salt).encode("utf-8")
    return "v-" + hmac.new(key, f"user:{user_id}".encode(), hashlib.sha256).hexdigest()[:16]


def _has_email_candidate(text: str) -> bool:
    at = text.find("@")
    while at != -1:
        # "name@host": a decorator or matrix product ("@property", "a @ b") has no local part before it.
        if 0 < at < len(text) - 1 and text[at - 1] in _LOCAL_PART_CHARS and text[at + 1].isalnum():
            return True
        at = text.find("@", at + 1)
    return False


def _needs_detector(text: str) -> bool:
    if "://" in text:
        return True
    lowered = text.lower()
    for stem in _KEYWORD_STEMS:
        if stem in lowered:
            return True
    if ("key" in lowered or "pass" in lowered) and _KEYWORD_RE.search(lowered):
        return True
    raw = text.encode("utf-8", "replace")
    reduced = raw.translate(_ALPHABET)
    if b"d" not in reduced:
        return False
    # Random tokens of 20+ characters carry digits (identifiers rarely carry three) or a vendor's prefix.
    runs = reduced.translate(_DIGITS_AS_LETTERS)
    start = runs.find(_LONG_RUN)
    while start != -1:
        end = _RUN_REST_RE.match(runs, start + len(_LONG_RUN)).end()
        if reduced.count(b"d", start, end) >= 3 or raw.startswith(_VENDOR_PREFIXES, start, end):
            return True
        start = runs.find(_LONG_RUN, end)
    # A quoted string of 9+ characters with a digit: the entropy plugins' candidates.
    if b"q" in reduced:
        for run in _QUOTED_RUN_RE.findall(reduced):
            if b"d" in run:
                return True
    return b"d.d" in reduced and _DOTTED_QUAD_RE.search(reduced) is not None


def _prefilter():
    """One RE2 pass (a DFA: linear time, all alternatives at once) over the text's UTF-8 bytes that matches
    wherever any check of the gate could pass; most texts end here. None without the google-re2 package."""
    try:
        import re2
    except ImportError:  # the gate alone gives the same answers, a few microseconds slower per text
        return None
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # bytes, as the gate's own byte checks see them
    options.never_capture = True
    token = rb"[A-Za-z0-9+/=_\x80-\xff-]"
    alternatives = [
        rb"(?i:passw|pwd|secret|contrase|key|pass)",  # keyword stems (the gate narrows key / pass)
        rb"://",  # basic auth
        rb"[A-Za-z0-9._%+-]@[^\s]",  # e-mail
        token + rb"{20,}",  # long runs (the gate wants 3 digits or a vendor prefix)
        rb"['\"]" + token + rb"{9,}['\"]",  # quoted strings (the entropy plugins)
        rb"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}",  # dotted quads
    ]
    return re2.compile(rb"|".join(alternatives), options)


_PREFILTER = _prefilter()


def may_contain_secret(text: str) -> bool:
    """The cheap gate: False means none of the detectors can fire on this text (within the documented gaps)."""
    if _PREFILTER is not None and _PREFILTER.search(text.encode("utf-8", "replace")) is None:
        return False
    return _has_email_candidate(text) or _needs_detector(text)


class Masker:
    """Masks secrets and e-mail addresses in texts, counting what it masked.

    Use as a context manager: detect-secrets keeps its plugin settings in a global, which is set for the
    duration and restored afterwards.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.texts_seen = 0
        self.texts_scanned = 0
        self.texts_masked = 0
        self._stack: ExitStack | None = None
        self._plugins: list = []

    def __enter__(self) -> Masker:
        from detect_secrets.settings import default_settings, get_plugins

        self._stack = ExitStack()
        self._stack.enter_context(default_settings())
        self._plugins = list(get_plugins())
        return self

    def __exit__(self, *exc_info) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def summary(self) -> dict:
        return {
            "masked": dict(sorted(self.counts.items())),
            "masked_total": sum(self.counts.values()),
            "texts_seen": self.texts_seen,
            "texts_scanned": self.texts_scanned,
            "texts_masked": self.texts_masked,
        }

    def mask(self, text: str, *, count: bool = True) -> str:
        """The text with e-mail addresses, private keys and detected secrets replaced by masks.

        ``count=False`` for a text already counted (the same prompt masked again for another file).
        """
        if not count:
            saved = (self.counts.copy(), self.texts_seen, self.texts_scanned, self.texts_masked)
            try:
                return self.mask(text)
            finally:
                self.counts, self.texts_seen, self.texts_scanned, self.texts_masked = saved
        self.texts_seen += 1
        if not text or not may_contain_secret(text):
            return text
        self.texts_scanned += 1
        before = self.counts.total()
        if "PRIVATE KEY" in text:
            text, found = PRIVATE_KEY_RE.subn(PRIVATE_KEY_MASK, text)
            self.counts["Private Key"] += found
        lines = text.split("\n")
        for index, line in enumerate(lines):
            if not line:
                continue
            if _needs_detector(line):
                line = self._mask_detected(line, lines, index)
            if _has_email_candidate(line):
                line, found = EMAIL_RE.subn(EMAIL_MASK, line)
                self.counts["E-mail"] += found
            lines[index] = line
        if self.counts.total() == before:
            return text
        self.texts_masked += 1
        return "\n".join(lines)

    def _mask_detected(self, line: str, lines: list[str], index: int) -> str:
        spans: dict[tuple[int, int], str] = {}
        for secret_type, value in self._scan(line, lines, index):
            for start, end in _token_spans(line, value):
                spans.setdefault((start, end), secret_type)
        if not spans:
            return line
        # Overlapping finds (one token seen by two plugins) are masked and counted once.
        merged: list[tuple[int, int, str]] = []
        for (start, end), secret_type in sorted(spans.items()):
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
            else:
                merged.append((start, end, secret_type))
        out, position = [], 0
        for start, end, secret_type in merged:
            out.append(line[position:start])
            out.append(SECRET_MASK)
            position = end
            self.counts[secret_type] += 1
        out.append(line[position:])
        return "".join(out)

    def _scan(self, line: str, lines: list[str], index: int):
        # detect-secrets' file scan, for one line: its plugins, not in eager mode, through its filters.
        from detect_secrets.core.scan import _is_filtered_out, _scan_line
        from detect_secrets.util.code_snippet import get_code_snippet

        # Its whole-line filters are left out on purpose: "is_indirect_reference" drops any line that also
        # reads a setting (``os.environ[...]``), secrets on that line included.
        context = get_code_snippet(lines=lines, line_number=index + 1)
        for plugin in self._plugins:
            for secret in _scan_line(
                plugin=plugin,
                filename="snippet.py",
                line=line,
                line_number=index + 1,
                context=context,
                enable_eager_search=False,
            ):
                if secret.secret_value and not _is_filtered_out(
                    required_filter_parameters=["context"],
                    filename=secret.filename,
                    secret=secret.secret_value,
                    plugin=plugin,
                    line=line,
                    context=context,
                ):
                    yield secret.type, secret.secret_value


def _token_spans(line: str, value: str):
    """Where ``value`` occurs in ``line``, each widened to the whole token around it."""
    start = line.find(value)
    while start != -1:
        end = start + len(value)
        while start > 0 and line[start - 1] in _TOKEN_CHARS:
            start -= 1
        while end < len(line) and line[end] in _TOKEN_CHARS:
            end += 1
        yield start, end
        start = line.find(value, end)
