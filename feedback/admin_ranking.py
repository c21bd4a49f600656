"""Admin for the ranking side: volunteers, prompts (with the JSONL upload), completions, pairs,
assignments, votes, and the reports queue.

Prompt and completion text is untrusted: it is only ever shown through Django's escaping (form
widgets, list columns, ``format_html``), never marked safe. Votes and assignments are records of what
volunteers did and are read-only here; changing them by hand would break the pairs' counts.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from .coders.importing import prompts_import
from .coders.parsing import ImportFailed, decode_jsonl
from .models import Assignment, Completion, Flag, Pair, Prompt, Volunteer, Vote

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
PREVIEW_CHARS = 80


def _count_of(model, field: str) -> Coalesce:
    """A per-row count as a subquery: cheaper than a JOIN + GROUP BY, and the admin's COUNT(*) skips it."""
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def _preview(text: str) -> str:
    return Truncator(" ".join((text or "").split())).chars(PREVIEW_CHARS)


def _code(text: str):
    """Untrusted text as a literal block: format_html escapes it, so markup and template syntax show as typed."""
    return format_html('<pre class="codepref-text">{}</pre>', text or "")


class _TextMedia:
    css = {"all": ["feedback/admin_ranking.css"]}


def _link(obj, label=None):
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label if label is not None else str(obj))


# --- volunteers -------------------------------------------------------------------------------


class LanguageFilter(admin.SimpleListFilter):
    title = "language known"
    parameter_name = "language"

    def lookups(self, request, model_admin):
        return [(code, code) for code in settings.CODEPREF["LANGUAGES"]]

    def queryset(self, request, queryset):
        if self.value():
            # The list is stored as JSON text; matching the quoted code works on PostgreSQL and SQLite alike.
            return queryset.filter(languages__icontains=f'"{self.value()}"')
        return queryset


@admin.register(Volunteer)
class VolunteerAdmin(admin.ModelAdmin):
    list_display = ("user", "languages_list", "trust", "vote_count", "accepted_terms_at", "created_at")
    list_filter = (LanguageFilter, ("accepted_terms_at", admin.EmptyFieldListFilter), "accepted_licence")
    search_fields = ("user__username", "user__email")
    raw_id_fields = ("user",)
    readonly_fields = ("vote_count", "created_at")
    list_select_related = ("user",)

    def get_queryset(self, request):
        votes = Vote.objects.filter(volunteer=OuterRef("user")).order_by().values("volunteer")
        counted = votes.annotate(n=Count("pk")).values("n")
        return super().get_queryset(request).annotate(vote_count=Coalesce(Subquery(counted), 0))

    @admin.display(description="languages")
    def languages_list(self, obj):
        return ", ".join(obj.languages or []) or "-"

    @admin.display(description="votes", ordering="vote_count")
    def vote_count(self, obj):
        return obj.vote_count


# --- prompts and the upload -------------------------------------------------------------------


class PromptImportForm(forms.Form):
    file = forms.FileField(help_text="A .jsonl file: the project's schema, HumanEval or MBPP, one prompt per line.")
    strict = forms.BooleanField(required=False, help_text="Import nothing at all if any line is bad.")
    max_pairs = forms.IntegerField(
        required=False, min_value=0, help_text="Pairs per prompt at most (empty: the configured default)."
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        return upload


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    Media = _TextMedia
    change_list_template = "admin/feedback/prompt/change_list.html"
    list_display = (
        "id",
        "external_id",
        "text_preview",
        "language",
        "source",
        "test_style",
        "completions_count",
        "pairs_count",
        "created_at",
    )
    list_display_links = ("id", "external_id")
    list_filter = ("language", "source", "test_style")
    search_fields = ("text", "external_id")
    readonly_fields = ("content_hash", "completions_link", "created_at")
    fields = (
        "external_id",
        "source",
        "language",
        "text",
        "entry_point",
        "test_style",
        "tests",
        "reference_solution",
        "completions_link",
        "content_hash",
        "created_at",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(completions_count=_count_of(Completion, "prompt"), pairs_count=_count_of(Pair, "prompt"))
        )

    @admin.display(description="text")
    def text_preview(self, obj):
        return _preview(obj.text)

    @admin.display(description="completions", ordering="completions_count")
    def completions_count(self, obj):
        return obj.completions_count

    @admin.display(description="pairs", ordering="pairs_count")
    def pairs_count(self, obj):
        return obj.pairs_count

    @admin.display(description="completions")
    def completions_link(self, obj):
        if obj.pk is None:
            return "-"
        url = reverse("admin:feedback_completion_changelist") + f"?prompt__id__exact={obj.pk}"
        return format_html('<a href="{}">{} completions</a>', url, obj.completions.count())

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="feedback_prompt_import"), *super().get_urls()]

    def import_view(self, request):
        """Upload a .jsonl file: the same code path as ``manage.py import_prompts``, reported as messages."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PromptImportForm(request.POST, request.FILES) if request.method == "POST" else PromptImportForm()
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = prompts_import(
                    lines=decode_jsonl(upload.read()),
                    strict=form.cleaned_data["strict"],
                    max_pairs=form.cleaned_data["max_pairs"],
                )
            except ImportFailed as exc:
                self.message_user(request, f"{upload.name}: {exc}", messages.ERROR)
            else:
                level = messages.WARNING if report.bad_lines else messages.SUCCESS
                self.message_user(request, f"{upload.name}: {report.summary()}", level)
                for message in report.bad_line_messages():
                    self.message_user(request, f"{upload.name}: {message}", messages.WARNING)
            return redirect("admin:feedback_prompt_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import prompts",
            "form": form,
            "max_pairs_default": settings.CODEPREF["MAX_PAIRS_PER_PROMPT"],
        }
        return TemplateResponse(request, "admin/feedback/prompt/import.html", context)


# --- completions ------------------------------------------------------------------------------


@admin.register(Completion)
class CompletionAdmin(admin.ModelAdmin):
    Media = _TextMedia
    list_display = ("id", "prompt", "model_version", "outcome", "text_preview", "test_duration", "created_at")
    list_filter = ("outcome", "model_version", "prompt__language", "isolation")
    search_fields = ("text", "prompt__external_id", "model_version__name")
    list_select_related = ("prompt", "model_version")
    raw_id_fields = ("prompt", "model_version")
    # Completions are what volunteers judged: their text is shown, never edited.
    readonly_fields = (
        "prompt_link",
        "model_version",
        "text_display",
        "text_hash",
        "params",
        "request_key",
        "outcome",
        "test_duration",
        "stdout_display",
        "stderr_display",
        "isolation",
        "sandbox_version",
        "tested_at",
        "created_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    @admin.display(description="text")
    def text_preview(self, obj):
        return _preview(obj.text)

    @admin.display(description="prompt")
    def prompt_link(self, obj):
        return _link(obj.prompt)

    @admin.display(description="text")
    def text_display(self, obj):
        return _code(obj.text)

    @admin.display(description="test stdout")
    def stdout_display(self, obj):
        return _code(obj.test_stdout) if obj.test_stdout else "-"

    @admin.display(description="test stderr")
    def stderr_display(self, obj):
        return _code(obj.test_stderr) if obj.test_stderr else "-"


# --- pairs and assignments --------------------------------------------------------------------


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    Media = _TextMedia
    list_display = (
        "id",
        "prompt",
        "completion_a",
        "completion_b",
        "votes_count",
        "votes_wanted",
        "claims_count",
        "state",
        "decided_by_tests",
        "gold_choice",
        "last_vote_at",
    )
    list_filter = ("state", "decided_by_tests", "language", ("gold_choice", admin.EmptyFieldListFilter))
    search_fields = ("prompt__text", "prompt__external_id")
    list_select_related = ("prompt",)
    raw_id_fields = ("prompt", "completion_a", "completion_b")
    readonly_fields = (
        "prompt_link",
        "language",
        "completion_a_text",
        "completion_b_text",
        "votes_count",
        "claims_count",
        "last_vote_at",
        "created_at",
    )
    fields = ("prompt_link", "language", "completion_a_text", "completion_b_text", "votes_wanted", "state")
    fields += ("gold_choice", "decided_by_tests", "votes_count", "claims_count", "last_vote_at", "created_at")
    actions = ("retire",)

    def has_add_permission(self, request):
        return False  # pairs are formed by import and generation, which keep A before B and the cap

    @admin.display(description="prompt")
    def prompt_link(self, obj):
        return _link(obj.prompt)

    @admin.display(description="completion A")
    def completion_a_text(self, obj):
        return format_html("{}{}", _link(obj.completion_a), _code(obj.completion_a.text))

    @admin.display(description="completion B")
    def completion_b_text(self, obj):
        return format_html("{}{}", _link(obj.completion_b), _code(obj.completion_b.text))

    @admin.action(description="Retire selected pairs (no more votes)")
    def retire(self, request, queryset):
        count = queryset.exclude(state=Pair.State.RETIRED).update(state=Pair.State.RETIRED)
        self.message_user(request, f"{count} pair(s) retired.", messages.SUCCESS)


class AssignmentStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "pending"), ("voted", "voted"), ("skipped", "skipped"), ("released", "released")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(voted_at__isnull=True, skipped_at__isnull=True, released_at__isnull=True)
        if self.value() in ("voted", "skipped", "released"):
            return queryset.filter(**{f"{self.value()}_at__isnull": False})
        return queryset


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "volunteer", "left_is_a", "state", "created_at", "expires_at")
    list_filter = (AssignmentStateFilter, "left_is_a")
    search_fields = ("volunteer__username", "pair__prompt__external_id")
    list_select_related = ("volunteer",)
    readonly_fields = ("pair", "volunteer", "left_is_a", "created_at", "expires_at", "voted_at", "skipped_at")
    readonly_fields += ("released_at",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    @admin.display(description="state")
    def state(self, obj):
        for name in ("voted", "skipped", "released"):
            if getattr(obj, f"{name}_at") is not None:
                return name
        return "pending"


# --- votes ------------------------------------------------------------------------------------


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "volunteer", "choice", "screen_choice", "time_taken_ms", "rationale", "created_at")
    list_filter = ("choice", "created_at", "left_is_a")
    search_fields = ("volunteer__username", "rationale", "pair__prompt__external_id")
    list_select_related = ("volunteer",)
    date_hierarchy = "created_at"
    readonly_fields = ("pair", "volunteer", "choice", "left_is_a", "screen_choice", "idempotency_key", "rationale")
    readonly_fields += ("time_taken_ms", "created_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted vote would leave its pair's count wrong; uphold a report instead

    @admin.display(description="as seen")
    def screen_choice(self, obj):
        return obj.screen_choice


# --- reports ----------------------------------------------------------------------------------


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    """The reports queue: open reports first, resolved with the "uphold" and "dismiss" actions."""

    Media = _TextMedia

    list_display = ("id", "reason", "state", "reporter", "subject", "note", "created_at", "resolved_by", "resolved_at")
    list_filter = ("state", "reason", "created_at")
    search_fields = ("note", "reporter__username", "prompt__external_id", "prompt__text")
    list_select_related = ("reporter", "resolved_by")
    readonly_fields = ("reporter", "subject", "pair_texts", "reason", "note", "created_at", "resolved_by")
    readonly_fields += ("resolved_at",)
    fields = ("reason", "reporter", "subject", "pair_texts", "note", "state", "resolved_by", "resolved_at")
    fields += ("created_at",)
    actions = ("uphold", "dismiss")

    def has_add_permission(self, request):
        return False

    def get_ordering(self, request):
        open_first = Case(When(state=Flag.State.OPEN, then=Value(0)), default=Value(1)).asc()
        return (open_first, "-created_at")

    @admin.display(description="about")
    def subject(self, obj):
        if obj.pair_id:
            return _link(obj.pair)
        if obj.completion_id:
            return _link(obj.completion)
        return _link(obj.prompt)

    @admin.display(description="what was reported")
    def pair_texts(self, obj):
        if obj.pair_id:
            pair = obj.pair
            a, b = pair.completion_a, pair.completion_b
            return format_html("{}<p>A</p>{}<p>B</p>{}", _code(pair.prompt.text), _code(a.text), _code(b.text))
        if obj.completion_id:
            return _code(obj.completion.text)
        return _code(obj.prompt.text) if obj.prompt_id else "-"

    def save_model(self, request, obj, form, change):
        if "state" in form.changed_data:
            resolved = obj.state != Flag.State.OPEN
            obj.resolved_by = request.user if resolved else None
            obj.resolved_at = timezone.now() if resolved else None
        super().save_model(request, obj, form, change)

    def _resolve(self, request, queryset, state: str, verb: str) -> None:
        count = queryset.update(state=state, resolved_by=request.user, resolved_at=timezone.now())
        self.message_user(request, f"{count} report(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Uphold selected reports (exclude from datasets)")
    def uphold(self, request, queryset):
        self._resolve(request, queryset, Flag.State.UPHELD, "upheld")

    @admin.action(description="Dismiss selected reports")
    def dismiss(self, request, queryset):
        self._resolve(request, queryset, Flag.State.DISMISSED, "dismissed")
