"""Admin for training runs: cycles and their stages, metrics, log tail, loss curves, and cancelling.

Runs are written by the training cycle (feedback/cycles/services.py), never edited here: the pages are
read-only except for "cancel". Loss curves are PNG files under the run's artefact folder, served to
staff by ``artefact_view`` (path-checked to stay inside ``TRAINING_DIR``) so that ``<img src>`` stays on
this origin, as the CSP's ``img-src 'self'`` asks.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib import admin, messages
from django.http import FileResponse, Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from feedback.errors import ServiceError
from feedback.models import TrainingRun

from .display import cycle_outcome, log_without_progress_bars, metrics_items, run_time, short
from .runs import ACTIVE, LOG_NAME, is_watched
from .services import training_run_cancel

# What the artefact view serves, by suffix; anything else under the folder (weights, configs) is not.
SERVED_TYPES = {".png": "image/png", ".log": "text/plain; charset=utf-8", ".jsonl": "text/plain; charset=utf-8"}
MAX_IMAGES_PER_STAGE = 8


def _pretty_json(value) -> str:
    if not value:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


def artefact_path(run: TrainingRun, relpath: str) -> Path | None:
    """The file ``relpath`` under the run's artefact folder, if it is one the admin may serve; else None."""
    if not run.artefact_dir:
        return None
    training_root = Path(settings.CODEPREF["TRAINING_DIR"]).resolve()
    root = Path(run.artefact_dir).resolve()
    if not root.is_relative_to(training_root):
        return None  # a folder outside TRAINING_DIR is never served, whatever the row says
    target = (root / relpath).resolve()
    if not target.is_relative_to(root) or target.suffix.lower() not in SERVED_TYPES or not target.is_file():
        return None
    return target


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "stage",
        "state_shown",
        "recipe",
        "cycle_link",
        "snapshot",
        "started_at",
        "finished_at",
        "duration",
        "model_version",
        "promotion_outcome",
    )
    list_filter = ("stage", "state", "recipe")
    list_select_related = ("snapshot", "model_version", "cycle")
    search_fields = ("message", "recipe")
    actions = ["cancel_runs"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "stage",
                    "state_shown",
                    "message",
                    "produced",
                    "cycle_link",
                    "recipe",
                    "snapshot",
                    "base_model",
                    "model_version",
                    "promotion_shown",
                    "started_at",
                    "finished_at",
                    "duration",
                )
            },
        ),
        ("Stages", {"fields": ("stages_table",)}),
        ("Metrics", {"fields": ("metrics_pretty", "loss_curves")}),
        ("Log", {"fields": ("log_tail_pretty",)}),
        (
            "Process",
            {
                "classes": ("collapse",),
                "fields": ("artefact_dir", "pid", "host", "heartbeat_at", "cancel_requested", "config_pretty"),
            },
        ),
    )
    # Every field on the page is shown, never edited: cancelling is the one change, through its own action.
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])
    change_form_template = "admin/feedback/trainingrun/change_form.html"

    # --- permissions: read-only pages, "cancel" for those who may change runs ----------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.state in ACTIVE:
            return False  # cancel it first: deleting a running cycle would orphan its process
        return super().has_delete_permission(request, obj)

    def has_cancel_permission(self, request, obj=None):
        user = request.user
        return user.is_active and user.is_staff and user.has_perm("feedback.change_trainingrun")

    # --- columns -----------------------------------------------------------------------------------------

    @admin.display(description="state", ordering="state")
    def state_shown(self, run: TrainingRun) -> str:
        if run.stage == TrainingRun.Stage.CYCLE and run.state == TrainingRun.State.RUNNING and not is_watched(run):
            since = f" since {run.heartbeat_at:%Y-%m-%d %H:%M}" if run.heartbeat_at else ""
            return f"{run.state} (no watcher{since})"
        if run.cancel_requested and run.state in ACTIVE:
            return f"{run.state} (cancel requested)"
        return run.state

    @admin.display(description="cycle")
    def cycle_link(self, run: TrainingRun) -> str:
        if not run.cycle_id:
            return "-"
        url = reverse("admin:feedback_trainingrun_change", args=[run.cycle_id])
        return format_html('<a href="{}">cycle {}</a>', url, run.cycle_id)

    @admin.display(description="duration")
    def duration(self, run: TrainingRun) -> str:
        return run_time(run)

    @admin.display(description="produced")
    def produced(self, run: TrainingRun) -> str:
        return cycle_outcome(run)

    @admin.display(description="stages")
    def stages_table(self, run: TrainingRun) -> str:
        if run.stage != TrainingRun.Stage.CYCLE:
            return "-"
        stages = list(run.stages.order_by("started_at", "pk"))
        if not stages:
            return "-"
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:feedback_trainingrun_change", args=[s.pk]),
                    s.stage,
                    s.state,
                    run_time(s),
                    _metrics_cell(s.metrics),
                )
                for s in stages
            ),
        )
        return format_html(
            "<table><thead><tr><th>stage</th><th>state</th><th>time</th><th>metrics</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="promotion")
    def promotion_outcome(self, run: TrainingRun) -> str:
        decision = (run.metrics or {}).get("promotion")
        if not isinstance(decision, dict):
            return "-"
        return "promoted" if decision.get("promote") else "kept parent"

    @admin.display(description="promotion")
    def promotion_shown(self, run: TrainingRun) -> str:
        """The gate's decision in words, then its evidence (see training/promotion_gate.py)."""
        decision = (run.metrics or {}).get("promotion")
        if not isinstance(decision, dict):
            return "-"
        evidence = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", _promotion_rows(decision))
        return format_html(
            "<p>{}</p><table><tbody>{}</tbody></table>",
            decision.get("summary", "-"),
            evidence,
        )

    @admin.display(description="metrics")
    def metrics_pretty(self, run: TrainingRun) -> str:
        return _pretty_json(run.metrics)

    @admin.display(description="config")
    def config_pretty(self, run: TrainingRun) -> str:
        return _pretty_json(run.config)

    @admin.display(description="log tail")
    def log_tail_pretty(self, run: TrainingRun) -> str:
        if not run.log_tail:
            return "-"
        text, dropped = log_without_progress_bars(run.log_tail)
        note = f"{dropped} progress-bar line{'s' * (dropped != 1)} left out (the full log has them)" if dropped else ""
        return format_html("<pre>{}</pre>{}", text, format_html("<p>{}</p>", note) if note else "")

    @admin.display(description="loss curves")
    def loss_curves(self, run: TrainingRun) -> str:
        runs = list(run.stages.order_by("started_at", "pk")) if run.stage == TrainingRun.Stage.CYCLE else [run]
        images = []
        for stage_run in runs:
            folder = Path(stage_run.artefact_dir) if stage_run.artefact_dir else None
            if folder is None or not folder.is_dir():
                continue
            for png in sorted(folder.glob("*.png"))[:MAX_IMAGES_PER_STAGE]:
                if artefact_path(stage_run, png.name) is None:
                    continue
                url = reverse("admin:feedback_trainingrun_artefact", args=[stage_run.pk, png.name])
                images.append((stage_run.stage, png.name, url))
        if not images:
            return "-"
        return format_html_join(
            "",
            '<figure><img src="{2}" alt="{0} {1}" width="480"><figcaption>{0}: {1}</figcaption></figure>',
            images,
        )

    # --- views -------------------------------------------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "<int:pk>/artefact/<path:relpath>",
                self.admin_site.admin_view(self.artefact_view),
                name="feedback_trainingrun_artefact",
            ),
            path("<int:pk>/cancel/", self.admin_site.admin_view(self.cancel_view), name="feedback_trainingrun_cancel"),
        ]
        return own + super().get_urls()

    def artefact_view(self, request, pk: int, relpath: str):
        """A loss curve (or the log) of a run, for staff who may view runs; 404 for anything else."""
        if not self.has_view_permission(request):
            raise Http404
        run = get_object_or_404(TrainingRun, pk=pk)
        target = artefact_path(run, relpath)
        if target is None:
            raise Http404("no such artefact")
        content_type = SERVED_TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
        response = FileResponse(open(target, "rb"), content_type=content_type)
        response["Cache-Control"] = "private, max-age=60"
        return response

    def cancel_view(self, request, pk: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = get_object_or_404(TrainingRun, pk=pk)
        if not self.has_cancel_permission(request, run):
            raise Http404
        self._cancel(request, run)
        return redirect("admin:feedback_trainingrun_change", run.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if run is not None:
            cycle = run.cycle or run
            extra["can_cancel"] = cycle.state in ACTIVE and self.has_cancel_permission(request, run)
            extra["cancel_url"] = reverse("admin:feedback_trainingrun_cancel", args=[run.pk])
            if run.artefact_dir and artefact_path(cycle, LOG_NAME) is not None:
                extra["log_url"] = reverse("admin:feedback_trainingrun_artefact", args=[cycle.pk, LOG_NAME])
        return super().change_view(request, object_id, form_url, extra_context=extra)

    # --- actions -----------------------------------------------------------------------------------------

    @admin.action(description="Cancel selected runs (kills the pipeline)", permissions=["cancel"])
    def cancel_runs(self, request, queryset):
        for run in queryset:
            self._cancel(request, run)

    def _cancel(self, request, run: TrainingRun) -> None:
        try:
            cycle = training_run_cancel(run_id=run.pk, by=request.user.get_username())
        except ServiceError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        if cycle.state == TrainingRun.State.CANCELLED:
            self.message_user(request, f"cycle {cycle.pk} cancelled: {cycle.message}", messages.SUCCESS)
        else:
            self.message_user(
                request, f"cycle {cycle.pk}: cancel requested; its watcher stops the pipeline", messages.SUCCESS
            )


def _promotion_rows(decision: dict) -> list[tuple[str, str]]:
    """The promotion gate's evidence (training/promotion_gate.py ``Decision``) as (label, text) rows."""

    def rate(value) -> str:
        return f"{value:.3f}" if isinstance(value, (int, float)) else "-"

    def pair(mine: str, parents: str) -> str:
        parent = decision.get(parents)
        return rate(decision.get(mine)) + (f" (parent {rate(parent)})" if parent is not None else "")

    get = decision.get
    rows = [("pass@1", pair("pass_at_1", "parent_pass_at_1"))]
    rows.append(("degenerate rate", pair("degenerate_rate", "parent_degenerate_rate")))
    if isinstance(get("difference"), (int, float)):
        rows.append(("difference", f"{get('difference'):+.3f}"))
    if get("p_value") is not None:
        test = f"one-sided paired permutation test; promotes below {short(get('alpha'))}"
        rows.append(("p-value", f"{short(get('p_value'))} ({test})"))
        rows.append(("prompts better / worse", f"{get('prompts_better')} / {get('prompts_worse')}"))
    if get("chosen_from"):
        rows.append(("chosen from", f"{get('chosen_from')} (alpha divided by {get('candidates')})"))
    evaluated = f"{get('n_prompts')} prompts x {get('n_samples')} samples"
    rows.append(("evaluated", f"{evaluated} (needed: {get('min_completions')} completions)"))
    return rows


def _metrics_cell(metrics: dict) -> str:
    items, more = metrics_items(metrics)
    return ", ".join(items) + (f" and {more} more on the stage's page" if more else "")
