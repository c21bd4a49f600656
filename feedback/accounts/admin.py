"""Admin for volunteers."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from feedback.models import Volunteer, Vote


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
