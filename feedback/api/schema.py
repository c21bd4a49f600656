"""What every API operation shares in the OpenAPI schema: the error body and the common error responses."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What was wrong, for a person to read.")


class StrictCharFieldExtension(OpenApiSerializerFieldExtension):
    """A StrictCharField's schema with its pattern (no NUL; for some, not blank), which the field checks itself."""

    target_class = "feedback.api.fields.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema["pattern"] = self.target.schema_pattern
        return schema


def errors(**descriptions: str) -> dict[int, OpenApiResponse]:
    """Error responses for ``extend_schema``: ``errors(e400="...", e409="...")``."""
    return {int(code[1:]): OpenApiResponse(ErrorSerializer, description=text) for code, text in descriptions.items()}


AUTH_ERRORS = errors(
    e401="No or bad credentials.",
    e403="Not allowed.",
    e429="Too many requests (API_USER_RATE, API_VOTE_RATE): wait Retry-After seconds.",
)


# --- responses every operation can give, whatever its view says ---------------------------------
# They come from the plumbing around the views (the request guard, DRF's parsers and throttles, the 503
# handler, the URL resolver), so they are added here, to each operation, by a post-processing hook; the
# views document their own 400/403/404/409 with ``extend_schema``.
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}
_COMMON = {
    "401": "No or bad credentials (a missing, revoked or expired token).",
    "403": "Not allowed (not a maintainer, terms not accepted, or a missing CSRF token with a session).",
    "429": "Too many requests: wait as long as Retry-After says.",
    "503": "The database or the task queue is unreachable: nothing was stored; retry after Retry-After.",
}
_WITH_BODY = {
    "413": "The body is larger than the API takes (API_MAX_BODY_BYTES): refused before it is read.",
    "415": "The body is not JSON (Content-Type must be application/json).",
}
_WITH_PATH_PARAMETERS = {"404": "Nothing at this address (a path parameter of the wrong type, or no such item)."}


def add_common_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook: document the plumbing's error responses on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "Error",
        {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
    )
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            extra = dict(_COMMON)
            if method in ("post", "put", "patch"):
                extra.update(_WITH_BODY)
            if "{" in path:
                extra.update(_WITH_PATH_PARAMETERS)
            if operation.get("security") == [{}] or not operation.get("security", True):
                extra = {code: text for code, text in extra.items() if code not in ("401", "403")}
            for code, text in extra.items():
                response = operation["responses"].setdefault(code, {"description": text, "content": _ERROR_BODY})
                if code in ("429", "503"):
                    response.setdefault("headers", _RETRY_AFTER)
    return result
