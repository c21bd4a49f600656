"""Admin for the model registry: model versions, with actions to generate completions and (de)activate.

Completions themselves (with their generation parameters read-only) are with the ranking admin.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from kombu.exceptions import OperationalError

from feedback.errors import ServiceError
from feedback.models import Completion, ModelVersion, Prompt

from .registry import model_version_activate
from .tasks import generate_completions

ADMIN_GENERATION_N = 4


class ModelVersionForm(forms.ModelForm):
    class Meta:
        model = ModelVersion
        fields = ("name", "backend", "target", "base_url", "parent", "training_run", "is_active")

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
        return data


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    form = ModelVersionForm
    list_display = ("name", "backend", "target", "is_active", "parent", "completions", "created_at")
    list_filter = ("backend", "is_active")
    search_fields = ("name", "target")
    list_select_related = ("parent",)
    raw_id_fields = ("parent", "training_run")
    readonly_fields = ("metrics", "created_at")
    actions = ("generate_for_all_prompts", "make_active", "make_inactive")

    def get_queryset(self, request):
        rows = (
            Completion.objects.filter(model_version=OuterRef("pk"))
            .order_by()
            .values("model_version")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(completion_count=Coalesce(Subquery(rows, output_field=IntegerField()), 0))
        )

    @admin.display(description="completions", ordering="completion_count")
    def completions(self, obj):
        return obj.completion_count

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
