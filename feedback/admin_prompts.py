"""Admin for prompts (with the JSONL upload) and completions. (To join feedback/coders/admin.py.)"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from feedback.admin_display import TextMedia, code, count_of, link, preview
from feedback.importing import ImportFailed, decode_jsonl, prompts_import
from feedback.models import Completion, Pair, Prompt

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


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
class CompletionAdmin(admin.ModelAdmin):
    Media = TextMedia
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
