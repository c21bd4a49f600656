"""Admin for volunteers and for API tokens.

API tokens are knox's (stored as digests, expiring); this admin adds a name to each. The plain token is
shown once, in the message after "Save"; deleting a token revokes it.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from knox.admin import AuthTokenAdmin, AuthTokenCreateForm
from knox.models import AuthToken

from feedback.admin_display import NamedValuesFilter
from feedback.models import ApiTokenName, Volunteer, Vote


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
    list_filter = (
        LanguageFilter,
        ("accepted_terms_at", admin.EmptyFieldListFilter),
        ("accepted_licence", NamedValuesFilter),
    )
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


# --- API tokens ----------------------------------------------------------------------------------


class NamedTokenCreateForm(AuthTokenCreateForm):
    name = forms.CharField(max_length=100, help_text='What the token is for, e.g. "CI export job".')


@admin.display(description="name")
def _token_name(obj: AuthToken) -> str:
    record = getattr(obj, "name_record", None)
    return record.name if record else "-"


if admin.site.is_registered(AuthToken):  # knox registers its own; this one adds names
    admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class NamedAuthTokenAdmin(AuthTokenAdmin):
    add_form = NamedTokenCreateForm
    list_display = (_token_name, "user", "token_key", "created", "expiry", "is_expired")
    list_select_related = ("user", "name_record")
    search_fields = ["name_record__name", *AuthTokenAdmin.search_fields]

    @admin.display(boolean=True, description="expired")
    def is_expired(self, obj: AuthToken) -> bool:
        return obj.expiry is not None and obj.expiry <= timezone.now()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)  # knox shows the plain token once, in a message
        if not change and form.cleaned_data.get("name"):
            ApiTokenName.objects.create(token=obj, name=form.cleaned_data["name"], created_by=request.user)
