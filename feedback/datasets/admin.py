"""Admin for dataset snapshots.

Snapshots are built by the worker and immutable once published: the pages are read-only, with a
"Build now" button on the list (a snapshot with the default filters, queued after commit) and a
download link per file. Files are served by ``file_view`` to maintainers only (the "maintainer" group
or superusers), and only names the snapshot's manifest lists, streamed from disk.
"""

from __future__ import annotations

import os

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from feedback.admin_display import TextMedia
from feedback.api.permissions import MAINTAINER_GROUP
from feedback.errors import ServiceError
from feedback.models import DatasetSnapshot
from training.dataset_format import FILE_FORMATS, PARTS, SPLITS, count_key, file_name

from .files import snapshot_file_path
from .hub import hub_repo_check
from .services import snapshot_request_if_changed, snapshot_requeue
from .tasks import push_snapshot_to_hub


def _build_outcome(snapshot: DatasetSnapshot, *, new: bool) -> tuple[str, int]:
    """What "Build now" did, as the row stands after the request (with inline tasks it is already built)."""
    if not new:
        return (
            f"No vote was added or removed since v{snapshot.version}: it is current, so no new version was made.",
            messages.INFO,
        )
    snapshot.refresh_from_db()
    if snapshot.state == DatasetSnapshot.State.PUBLISHED:
        rows = (snapshot.counts or {}).get(count_key("preference", "train"), 0)
        return (
            f"Snapshot v{snapshot.version} built and published ({rows:,} preference rows in train).",
            messages.SUCCESS,
        )
    if snapshot.state == DatasetSnapshot.State.FAILED:
        return f"Snapshot v{snapshot.version} failed: {snapshot.error}", messages.ERROR
    return (
        f"Snapshot v{snapshot.version} queued (task {snapshot.task_id}); this list shows its progress.",
        messages.SUCCESS,
    )


def is_maintainer(user) -> bool:
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or user.groups.filter(name=MAINTAINER_GROUP).exists())
    )


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    Media = TextMedia  # the "Build now" form's style: the CSP forbids inline style attributes
    change_list_template = "admin/feedback/datasetsnapshot/change_list.html"
    change_form_template = "admin/feedback/datasetsnapshot/change_form.html"
    list_display = ("version", "state", "progress_shown", "preference_rows", "unpaired_rows", "prompt_rows",
                    "alpha", "created_at", "published_at", "requested_by")  # fmt: skip
    list_filter = ("state",)
    ordering = ("-version",)
    fields = ("version", "state", "progress_shown", "slot", "task_id", "requested_by", "created_at", "published_at",
              "last_vote_id", "alpha", "filters", "counts", "file_links", "error")  # fmt: skip
    readonly_fields = fields
    actions = ["requeue"]

    @admin.action(description="Queue the selected unfinished snapshots again")
    def requeue(self, request, queryset):
        if not is_maintainer(request.user):
            raise PermissionDenied
        queued = [
            s.version for s in queryset.filter(state=DatasetSnapshot.State.BUILDING) if snapshot_requeue(snapshot=s)
        ]
        self.message_user(
            request, f"Queued again: {', '.join(f'v{v}' for v in queued) or 'none (only building ones are)'}."
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # immutable once published; the build owns the row before that

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress_shown(self, obj: DatasetSnapshot) -> str:
        return f"{obj.progress:.0%}"

    def _rows(self, obj: DatasetSnapshot, part: str) -> str:
        counts = obj.counts or {}
        if count_key(part, "train") not in counts:
            return "-"
        return f"{counts[count_key(part, 'train')]:,} / {counts.get(count_key(part, 'test'), 0):,}"

    @admin.display(description="preference (train / test)")
    def preference_rows(self, obj: DatasetSnapshot) -> str:
        return self._rows(obj, "preference")

    @admin.display(description="unpaired (train / test)")
    def unpaired_rows(self, obj: DatasetSnapshot) -> str:
        return self._rows(obj, "unpaired")

    @admin.display(description="prompts (train / test)")
    def prompt_rows(self, obj: DatasetSnapshot) -> str:
        return self._rows(obj, "prompts")

    @admin.display(description="Krippendorff's alpha")
    def alpha(self, obj: DatasetSnapshot) -> str:
        return "-" if obj.agreement_alpha is None else f"{obj.agreement_alpha:.3f}"

    @admin.display(description="files")
    def file_links(self, obj: DatasetSnapshot):
        if obj.state != DatasetSnapshot.State.PUBLISHED or not obj.files:
            return "-"
        # Parquet and JSONL first, then the card and the hf folders' pieces.
        main = [file_name(part, split, fmt) for part in PARTS for split in SPLITS for fmt in FILE_FORMATS]
        names = [name for name in main if name in obj.files] + sorted(name for name in obj.files if name not in main)
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{}</a> ({} bytes, sha256 {})</li>',
                (
                    (
                        reverse("admin:feedback_datasetsnapshot_file", args=[obj.pk, name]),
                        name,
                        f"{obj.files[name]['bytes']:,}",
                        obj.files[name]["sha256"][:12],
                    )
                    for name in names
                ),
            ),
        )

    def get_urls(self):
        own = [
            path("build/", self.admin_site.admin_view(self.build_view), name="feedback_datasetsnapshot_build"),
            path("<int:pk>/push/", self.admin_site.admin_view(self.push_view), name="feedback_datasetsnapshot_push"),
            path(
                "<int:pk>/files/<path:name>",
                self.admin_site.admin_view(self.file_view),
                name="feedback_datasetsnapshot_file",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_build": is_maintainer(request.user)}
        return super().changelist_view(request, extra_context)

    def build_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not is_maintainer(request.user):
            raise PermissionDenied
        try:
            snapshot, new = snapshot_request_if_changed(requested_by=request.user)
        except ServiceError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, *_build_outcome(snapshot, new=new))
        return redirect("admin:feedback_datasetsnapshot_changelist")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        snapshot = self.get_object(request, object_id)
        can_push = (
            snapshot is not None and snapshot.state == DatasetSnapshot.State.PUBLISHED and is_maintainer(request.user)
        )
        extra = {**(extra_context or {}), "can_push": can_push, "hf_token_set": bool(os.environ.get("HF_TOKEN"))}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def push_view(self, request, pk: int):
        """Push a published snapshot to a Hub dataset repository: on a worker, or at once with inline tasks."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not is_maintainer(request.user):
            raise PermissionDenied
        snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
        try:
            repo = hub_repo_check(request.POST.get("repo", ""))
            if snapshot.state != DatasetSnapshot.State.PUBLISHED:
                raise ServiceError(f"snapshot v{snapshot.version} is {snapshot.state}: only a published one is pushed")
            result = push_snapshot_to_hub.apply_async(
                kwargs={"snapshot_id": snapshot.pk, "repo": repo, "private": bool(request.POST.get("private"))}
            )
        except ServiceError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        except Exception as exc:  # the broker: the push was not queued
            self.message_user(request, f"the push could not be queued ({type(exc).__name__}: {exc})", messages.ERROR)
        else:
            if result.ready():
                outcome = result.get()
                self.message_user(request, outcome["message"], messages.SUCCESS if outcome["ok"] else messages.ERROR)
            else:
                self.message_user(request, f"Push of v{snapshot.version} to {repo} queued (task {result.id}).")
        return redirect("admin:feedback_datasetsnapshot_change", snapshot.pk)

    def file_view(self, request, pk: int, name: str):
        if not is_maintainer(request.user):
            raise PermissionDenied
        snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
        path_ = snapshot_file_path(snapshot, name)
        if path_ is None:
            raise Http404("no such file in this snapshot")
        return FileResponse(open(path_, "rb"), as_attachment=True, filename=path_.name)  # noqa: SIM115


# Quality control: the volunteer admin with trust, flags and evidence, and the agreement page.
from . import quality_admin  # noqa: E402, F401
