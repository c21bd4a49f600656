"""Maintainer endpoints: dataset snapshots, their files, and building new ones.

    GET  /api/v1/datasets/                          snapshots, newest first, with row counts
    POST /api/v1/datasets/                          build one (body: filters); 202 with a task id
    GET  /api/v1/datasets/tasks/{task_id}/          the build's state and progress
    GET  /api/v1/datasets/{version}/                one snapshot, its filters, counts and files
    GET  /api/v1/datasets/{version}/files/{name}    a file, streamed (names from the manifest only)

Only maintainers (the "maintainer" group, or superusers), by session or by a knox token
(``Authorization: Token ...``); volunteers get 403, a revoked or expired token 401.
"""

from __future__ import annotations

import re

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from feedback.api.permissions import IsMaintainer
from feedback.api.schema import errors
from feedback.models import DatasetSnapshot

from .files import snapshot_file_path
from .options import FILTERS_SCHEMA
from .services import NOT_QUEUED, snapshot_request

LIST_LIMIT = 100


def _snapshot_json(snapshot: DatasetSnapshot, request: Request, *, files: bool) -> dict:
    body = {
        "version": snapshot.version,
        "state": snapshot.state,
        "progress": snapshot.progress,
        "created_at": snapshot.created_at,
        "published_at": snapshot.published_at,
        "filters": snapshot.filters,
        "counts": snapshot.counts,
        "agreement_alpha": snapshot.agreement_alpha,
        "last_vote_id": snapshot.last_vote_id,
        "task_id": snapshot.task_id,
        "error": snapshot.error,
        "url": reverse("api-dataset", args=[snapshot.version], request=request),
    }
    if files:
        body["files"] = [
            {
                "name": name,
                "bytes": info["bytes"],
                "sha256": info["sha256"],
                "url": reverse("api-dataset-file", args=[snapshot.version, name], request=request),
            }
            for name, info in sorted((snapshot.files or {}).items())
        ]
    return body


def _not_found(message: str) -> Response:
    return Response({"error": message}, status=status.HTTP_404_NOT_FOUND)


_TASK_ID = re.compile(r"[0-9A-Za-z_.:-]{1,64}")
_NOT_FOUND = "No such snapshot, file or build."


class DatasetListView(APIView):
    permission_classes = [IsMaintainer]

    @extend_schema(
        operation_id="datasets_list",
        summary="Dataset snapshots, newest first",
        parameters=[OpenApiParameter("limit", int, description=f"at most this many (default and max {LIST_LIMIT})")],
        responses={200: OpenApiTypes.OBJECT, **errors(e400="limit is not a whole number.")},
    )
    def get(self, request: Request) -> Response:
        try:
            limit = min(max(int(request.query_params.get("limit", LIST_LIMIT)), 1), LIST_LIMIT)
        except ValueError:
            return Response({"error": "limit must be a whole number"}, status=status.HTTP_400_BAD_REQUEST)
        snapshots = DatasetSnapshot.objects.order_by("-version")[:limit]
        return Response({"datasets": [_snapshot_json(s, request, files=False) for s in snapshots]})

    @extend_schema(
        operation_id="datasets_build",
        summary="Build a snapshot",
        description="Body: filters overriding the defaults (min_votes, min_agreement, drop_ties, exclude_open_flags, "
        "only_decided_by_tests, only_human_decided, test_fraction). The build runs on a worker.",
        request={"application/json": FILTERS_SCHEMA},
        responses={
            202: OpenApiTypes.OBJECT,
            **errors(
                e400="A bad filter, or a body that is not a JSON object.",
                e503="The task queue is unreachable: the build was not queued; retry later.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        # JSON only, whatever the body: DRF reads an empty body of any type as no data, and a build is not
        # queued for a request that was not what it claimed to be (an empty multipart form, say).
        content_type = request.content_type.split(";", 1)[0].strip().lower()
        has_body = request.META.get("CONTENT_LENGTH") not in (None, "", "0")
        if content_type not in ("", "application/json") or (has_body and not content_type):
            return Response(
                {"error": f"the body must be JSON (application/json), not {content_type[:80] or 'untyped'!r}"},
                status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            )
        filters = request.data
        if type(filters) is not dict:  # a JSON null, list or number (a QueryDict is not one either)
            return Response(
                {"error": "the body must be a JSON object of filters ({} or no body for the defaults)"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        snapshot = snapshot_request(filters=filters, requested_by=request.user)  # ServiceError -> 400
        snapshot.refresh_from_db(fields=["state", "error"])
        if snapshot.state == DatasetSnapshot.State.FAILED and snapshot.error.startswith(NOT_QUEUED):
            # Outside a transaction the build was sent at once, and the broker refused it: say so, not "building".
            return Response(
                {"error": f"snapshot v{snapshot.version} {snapshot.error}", "version": snapshot.version},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "30"},
            )
        return Response(
            {
                "task_id": snapshot.task_id,
                "version": snapshot.version,
                "state": snapshot.state,
                "status_url": reverse("api-dataset-task", args=[snapshot.task_id], request=request),
                "url": reverse("api-dataset", args=[snapshot.version], request=request),
            },
            status=status.HTTP_202_ACCEPTED,
        )


class DatasetDetailView(APIView):
    permission_classes = [IsMaintainer]

    @extend_schema(
        operation_id="datasets_retrieve",
        summary="One snapshot",
        responses={200: OpenApiTypes.OBJECT, **errors(e404=_NOT_FOUND)},
    )
    def get(self, request: Request, version: int) -> Response:
        snapshot = DatasetSnapshot.objects.filter(version=version).first()
        if snapshot is None:
            return _not_found(f"no dataset version {version}")
        return Response(_snapshot_json(snapshot, request, files=True))


class DatasetFileView(APIView):
    permission_classes = [IsMaintainer]

    @extend_schema(
        operation_id="datasets_file",
        summary="Download one file of a snapshot",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **errors(e404=_NOT_FOUND)},
    )
    def get(self, request: Request, version: int, name: str):
        snapshot = DatasetSnapshot.objects.filter(version=version).first()
        if snapshot is None:
            return _not_found(f"no dataset version {version}")
        path = snapshot_file_path(snapshot, name)
        if path is None:
            return _not_found(f"dataset version {version} has no file {name!r}")
        return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)  # noqa: SIM115


class DatasetTaskView(APIView):
    permission_classes = [IsMaintainer]

    @extend_schema(
        operation_id="datasets_task",
        summary="A build's state",
        responses={200: OpenApiTypes.OBJECT, **errors(e404=_NOT_FOUND)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        from celery import current_app
        from celery.result import AsyncResult

        # Task ids are UUIDs; anything else (a NUL byte, say) names no build and never reaches the database.
        snapshot = DatasetSnapshot.objects.filter(task_id=task_id).first() if _TASK_ID.fullmatch(task_id) else None
        if snapshot is None:
            return _not_found(f"no dataset build with task id {task_id!r}")
        # Tasks run inline (the demo) keep no result to look up.
        task_state = "EAGER" if current_app.conf.task_always_eager else AsyncResult(task_id).state
        return Response(
            {
                "task_id": task_id,
                "task_state": task_state,
                "state": snapshot.state,
                "progress": snapshot.progress,
                "snapshot": _snapshot_json(snapshot, request, files=False),
            }
        )
