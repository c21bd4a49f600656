"""Usernames people cannot mistake for each other: ``аdmin`` (Cyrillic а) or ``adm1n`` beside ``admin``.

A username is NFKC-normalised, then must be plain ASCII letters, digits and ``._-`` (so no script can stand
in for another); and its skeleton (lower case, look-alike characters folded: 0/o, 1/l/i, rn/m, vv/w, and the
separators dropped) must differ from every existing account's.
"""

from __future__ import annotations

import re
import unicodedata

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,29}")
_FOLDS = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("i", "l"), ("|", "l"), ("5", "s"), ("8", "b"))


def skeleton(username: str) -> str:
    text = unicodedata.normalize("NFKC", username).lower()
    text = re.sub(r"[._-]", "", text)
    for before, after in _FOLDS:
        text = text.replace(before, after)
    return text


def username_check(username: str, *, exclude_pk: int | None = None) -> str:
    """The username as it will be stored, or a ValidationError saying why it cannot be."""
    normalised = unicodedata.normalize("NFKC", username)
    if not ALLOWED.fullmatch(normalised):
        raise ValidationError(
            "Use 2 to 30 plain letters (A-Z), digits and . _ - starting with a letter or digit, "
            "so that no one can pass for someone else with look-alike characters."
        )
    wanted = skeleton(normalised)
    others = get_user_model().objects.exclude(pk=exclude_pk).values_list("username", flat=True)
    # Read to the end (no early exit): a server-side cursor left open would outlive its transaction.
    if [other for other in others.iterator(chunk_size=5000) if skeleton(other) == wanted]:
        raise ValidationError("This username looks too much like one that is taken; please choose another.")
    return normalised
