"""JSON in and out through orjson: on the vote path DRF's json-module renderer was a visible share of a request."""

from __future__ import annotations

import orjson
from django.utils.functional import Promise
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer


def _default(value):
    if isinstance(value, Promise):  # lazy translations in DRF's error details
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259)

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default)


class ORJSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = ORJSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"the body is not valid JSON: {exc}")


class JSONOnlyNegotiation(BaseContentNegotiation):
    """These views speak JSON only: skip parsing the Accept header on every request."""

    def select_parser(self, request, parsers):
        content_type = request.content_type.split(";", 1)[0].strip().lower()
        for parser in parsers:
            if parser.media_type == content_type:
                return parser
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
