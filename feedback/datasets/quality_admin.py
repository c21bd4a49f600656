"""Admin for quality control: volunteers with their computed trust, flags and evidence; suspend / reinstate;
recompute now; and the agreement page (Krippendorff's alpha overall, per language, per model pair)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from feedback.accounts.admin import VolunteerAdmin
from feedback.accounts.moderation import volunteers_suspend
from feedback.models import Volunteer

from .agreement import agreement_report
from .quality import quality_recompute


class TrustBelowThreshold(admin.SimpleListFilter):
    title = "vote weight"
    parameter_name = "weight"

    def lookups(self, request, model_admin):
        return [("low", "below the threshold (votes left out)"), ("ok", "at or above")]

    def queryset(self, request, queryset):
        from django.conf import settings

        threshold = settings.CODEPREF["QC_TRUST_THRESHOLD"]
        if self.value() == "low":
            return queryset.filter(trust__lt=threshold)
        if self.value() == "ok":
            return queryset.filter(trust__gte=threshold)
        return queryset


class VolunteerQualityAdmin(VolunteerAdmin):
    change_list_template = "admin/feedback/volunteer/change_list.html"
    list_display = (
        "user", "languages_list", "trust", "gold_score", "qc_flagged", "flags_summary", "suspended_at", "vote_count",
        "created_at",
    )  # fmt: skip
    list_filter = ("qc_flagged", TrustBelowThreshold, ("suspended_at", admin.EmptyFieldListFilter),
                   *VolunteerAdmin.list_filter)  # fmt: skip
    readonly_fields = (*VolunteerAdmin.readonly_fields, "trust_by_language", "gold_votes", "gold_correct",
                       "qc_flagged", "evidence", "trust_computed_at", "suspended_at")  # fmt: skip
    exclude = ("qc_evidence",)
    actions = ("suspend", "reinstate", "recompute")

    @admin.display(description="gold agreed")
    def gold_score(self, obj):
        return f"{obj.gold_correct}/{obj.gold_votes}" if obj.gold_votes else "-"

    @admin.display(description="flags")
    def flags_summary(self, obj):
        flags = (obj.qc_evidence or {}).get("flags") or {}
        return ", ".join(f"{name} {count}" for name, count in flags.items()) or "-"

    @admin.display(description="evidence")
    def evidence(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.qc_evidence or {}, indent=2, sort_keys=True))

    @admin.action(description="Suspend selected (their votes leave future snapshots; logged)")
    def suspend(self, request, queryset):
        count = volunteers_suspend(volunteer_ids=queryset.values_list("pk", flat=True), by=request.user)
        self.message_user(request, f"{count} volunteer(s) suspended.", messages.SUCCESS)

    @admin.action(description="Lift the suspension of selected (logged)")
    def reinstate(self, request, queryset):
        ids = queryset.values_list("pk", flat=True)
        count = volunteers_suspend(volunteer_ids=ids, by=request.user, suspend=False)
        self.message_user(request, f"{count} suspension(s) lifted.", messages.SUCCESS)

    @admin.action(description="Recompute quality control now (all volunteers)")
    def recompute(self, request, queryset):
        stats = quality_recompute()
        self.message_user(
            request,
            f"Recomputed: {stats['volunteers']} volunteers, {stats['flagged_volunteers']} flagged, "
            f"{stats['below_threshold']} below the threshold, {stats['pairs_reopened']} pairs reopened.",
            messages.SUCCESS,
        )

    def get_urls(self):
        own = [path("agreement/", self.admin_site.admin_view(self.agreement_view), name="feedback_agreement")]
        return own + super().get_urls()

    def agreement_view(self, request):
        context = {**self.admin_site.each_context(request), "title": "Agreement between volunteers",
                   "report": agreement_report(), "opts": self.model._meta}  # fmt: skip
        return TemplateResponse(request, "admin/feedback/agreement.html", context)


if admin.site.is_registered(Volunteer):
    admin.site.unregister(Volunteer)
admin.site.register(Volunteer, VolunteerQualityAdmin)
