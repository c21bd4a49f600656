"""Serializer fields that take JSON's own types only: a number is not a string, and a string is not a number.

DRF's fields coerce ("1" -> 1, 1 -> "1"); these refuse, so the API answers with a message instead of
guessing. Their messages name the limit the OpenAPI schema documents.
"""

from __future__ import annotations

from rest_framework import serializers

from feedback.models import MAX_ID


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {
        "invalid": "must be a whole number (a JSON number)",
        "min_value": "must be at least {min_value}",
        "max_value": "must be at most {max_value}",
        "required": "is required",
        "null": "is required",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(StrictIntegerField):
    """A row's id: a positive bigint (a larger number would be a database error, not an answer)."""

    default_error_messages = {
        "invalid": "must be a positive integer id",
        "min_value": "must be a positive integer id",
        "max_value": "must be a positive integer id",
    }

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


# What the OpenAPI schema says a StrictCharField takes (feedback/api/schema.py documents it): no NUL.
NO_NUL = r"^[^\x00]*$"
# ... and, for a field that is trimmed and may not be blank, at least one character that is not a space: a space
# as Python's str.strip() (DRF's trim) sees it, spelled out, since a schema's \s (ECMA-262) is another set (it
# leaves out \x1c-\x1f and \x85, which Python strips: schemathesis found a key the schema allowed and the server
# refused as blank).
_SPACES = "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace())
NOT_BLANK = rf"^[^\x00]*[^{_SPACES}\x00][^\x00]*$"


class StrictCharField(serializers.CharField):
    default_error_messages = {
        "invalid": "must be a string",
        "blank": "must not be blank",
        "max_length": "must be at most {max_length} characters",
        "min_length": "must be at least {min_length} characters",
        "required": "is required",
        "null": "is required",
        "nul_character": "must not contain NUL characters",
    }

    def __init__(self, *, schema_pattern: str = NO_NUL, **kwargs) -> None:
        super().__init__(**kwargs)
        self.schema_pattern = schema_pattern
        # NUL is checked below with this field's own message (DRF's validator has a fixed one).
        self.validators = [v for v in self.validators if type(v).__name__ != "ProhibitNullCharactersValidator"]

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            self.fail("nul_character")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    default_error_messages = {
        "invalid_choice": "must be one of {choices}; got {input!r}",
        "required": "is required",
        "null": "is required",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data, choices=", ".join(map(str, self.choices)))
        if data not in self.choices:
            self.fail("invalid_choice", input=data, choices=", ".join(map(str, self.choices)))
        return data
