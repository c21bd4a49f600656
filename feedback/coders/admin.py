"""Admin for coders: prompts (with the JSONL upload), completions (read-only: they are what volunteers judged),
and the model registry, with actions to generate completions and (de)activate a version."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from kombu.exceptions import OperationalError

from feedback.admin_display import NamedValuesFilter, TextMedia, code, count_of, link, preview
from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, Pair, Prompt

from .importing import prompts_import
from .moderation import content_hide
from .parsing import ImportFailed, decode_jsonl
from .registry import model_version_activate
from .seed_settings import fim_template_clean, stop_sequences_clean
from .tasks import generate_completions

MAX_UPLOAD_BYTES = 50 * 1024 * 1024

ADMIN_GENERATION_N = 4


class ModelVersionForm(forms.ModelForm):
    class Meta:
        model = ModelVersion
        fields = (
            "name",
            "backend",
            "target",
            "base_url",
            "weights",
            "trust_remote_code",
            "prompt_prefix",
            "stop_sequences",
            "fim_template",
            "parent",
            "training_run",
            "is_active",
        )

    def clean(self):
        data = super().clean()
        backend, target = data.get("backend"), (data.get("target") or "").strip()
        base_url = (data.get("base_url") or "").strip()
        if backend in (ModelVersion.Backend.TRANSFORMERS, ModelVersion.Backend.OPENAI) and not target:
            self.add_error("target", "A folder or hub id (transformers), or the served model name (openai).")
        if backend == ModelVersion.Backend.OPENAI and base_url and not base_url.startswith(("http://", "https://")):
            self.add_error("base_url", "Must start with http:// or https:// (for example http://127.0.0.1:8001/v1).")
        if backend == ModelVersion.Backend.IMPORTED and data.get("is_active"):
            self.add_error("is_active", "An imported version holds imported completions; it cannot be active.")
        if self.instance.pk and data.get("parent") and data["parent"].pk == self.instance.pk:
            self.add_error("parent", "A version cannot be its own parent.")
        for name, check in (("stop_sequences", stop_sequences_clean), ("fim_template", fim_template_clean)):
            if data.get(name) is not None:
                try:
                    data[name] = check(data[name])
                except ServiceError as exc:
                    self.add_error(name, str(exc))
        return data


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    form = ModelVersionForm
    Media = TextMedia
    list_display = ("name", "backend", "target", "runs_hub_code", "is_active", "parent", "completions", "created_at")
    list_filter = ("backend", "is_active", "trust_remote_code")
    search_fields = ("name", "target")
    list_select_related = ("parent",)
    raw_id_fields = ("parent", "training_run")
    readonly_fields = ("metrics", "created_at")
    actions = ("generate_for_all_prompts", "make_active", "make_inactive")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(completion_count=count_of(Completion, "model_version"))

    @admin.display(description="completions", ordering="completion_count")
    def completions(self, obj):
        return obj.completion_count

    @admin.display(description="remote code", ordering="trust_remote_code")
    def runs_hub_code(self, obj):
        # Loud on purpose: a version with this set runs its repository's Python on the workers.
        if obj.trust_remote_code:
            return format_html('<strong class="cp-warning">{}</strong>', "RUNS THE MODEL'S OWN CODE")
        return "no"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "trust_remote_code" in form.changed_data and obj.trust_remote_code:
            self.message_user(
                request,
                f"{obj.name}: trust_remote_code is on. Loading this model runs Python code from its repository on "
                "the workers; keep it on only for a repository you trust.",
                messages.WARNING,
            )

    @admin.action(description=f"Generate {ADMIN_GENERATION_N} completions for all prompts")
    def generate_for_all_prompts(self, request, queryset):
        prompt_ids = list(Prompt.objects.order_by("pk").values_list("pk", flat=True))
        if not prompt_ids:
            self.message_user(request, "There are no prompts yet: import some first.", messages.WARNING)
            return
        for version in queryset:
            if version.backend == ModelVersion.Backend.IMPORTED:
                self.message_user(
                    request, f"{version.name}: imported completions only; it cannot generate.", messages.ERROR
                )
                continue
            try:
                # Inline when tasks run eagerly (the demo), on the "generation" queue otherwise.
                result = generate_completions.delay(prompt_ids, version.pk, ADMIN_GENERATION_N, {})
            except ServiceError as exc:
                self.message_user(request, f"{version.name}: {exc}", messages.ERROR)
                continue
            except OperationalError:
                self.message_user(request, "The task queue is unreachable; nothing was queued.", messages.ERROR)
                return
            self.message_user(
                request,
                f"{version.name}: generation of {ADMIN_GENERATION_N} completions for {len(prompt_ids)} prompt(s) "
                f"{'done' if result.ready() else 'queued'}.",
                messages.SUCCESS,
            )

    @admin.action(description="Make active (generates for the arena)")
    def make_active(self, request, queryset):
        updated = imported = 0
        for version in queryset:
            try:
                model_version_activate(model_version_id=version.pk)
            except ServiceError:  # an imported version: it holds imported completions and cannot generate
                imported += 1
            else:
                updated += 1
        self.message_user(request, f"{updated} model version(s) active.", messages.SUCCESS)
        if imported:
            self.message_user(request, f"{imported} imported version(s) left inactive.", messages.WARNING)

    @admin.action(description="Make inactive")
    def make_inactive(self, request, queryset):
        for version in queryset:
            model_version_activate(model_version_id=version.pk, active=False)
        self.message_user(request, f"{len(queryset)} model version(s) inactive.", messages.SUCCESS)


# --- prompts and the upload ---------------------------------------------------------------------


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


class HideActions:
    """Moderation: hide (out of assignment and exports, nothing deleted) or show again; each logged."""

    actions = ("hide_selected", "show_selected")

    @admin.action(description="Hide selected (out of assignment and exports; logged)")
    def hide_selected(self, request, queryset):
        retired = sum(content_hide(obj=obj, by=request.user) for obj in queryset)
        self.message_user(request, f"Hidden; {retired} pair(s) retired.", messages.SUCCESS)

    @admin.action(description="Show selected again (logged)")
    def show_selected(self, request, queryset):
        restored = sum(content_hide(obj=obj, by=request.user, hide=False) for obj in queryset)
        self.message_user(request, f"Shown again; {restored} pair(s) back.", messages.SUCCESS)


@admin.register(Prompt)
class PromptAdmin(HideActions, admin.ModelAdmin):
    Media = TextMedia
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
    list_filter = ("language", "source", "test_style", ("hidden_at", admin.EmptyFieldListFilter))
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
            .annotate(completions_count=count_of(Completion, "prompt"), pairs_count=count_of(Pair, "prompt"))
        )

    @admin.display(description="text")
    def text_preview(self, obj):
        return preview(obj.text)

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
class CompletionAdmin(HideActions, admin.ModelAdmin):
    Media = TextMedia
    list_display = (
        "id",
        "prompt",
        "model_version",
        "outcome",
        "verdict_strength",
        "text_preview",
        "test_duration",
        "created_at",
    )
    list_filter = (
        "outcome",
        "verdict_strength",
        "model_version",
        "prompt__language",
        ("isolation", NamedValuesFilter),
        ("hidden_at", admin.EmptyFieldListFilter),
    )
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
        "verdict_strength",
        "test_details",
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
        return preview(obj.text)

    @admin.display(description="prompt")
    def prompt_link(self, obj):
        return link(obj.prompt)

    @admin.display(description="text")
    def text_display(self, obj):
        return code(obj.text)

    @admin.display(description="test stdout")
    def stdout_display(self, obj):
        return code(obj.test_stdout) if obj.test_stdout else "-"

    @admin.display(description="test stderr")
    def stderr_display(self, obj):
        return code(obj.test_stderr) if obj.test_stderr else "-"
