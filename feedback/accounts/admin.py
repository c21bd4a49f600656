"""Admin for maintainers' API tokens.

API tokens are knox's (stored as digests, expiring); this admin adds a name to each. The plain token is
shown once, in the message after "Save"; deleting a token revokes it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone
from knox.admin import AuthTokenAdmin, AuthTokenCreateForm
from knox.models import AuthToken

from feedback.models import ApiTokenName


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
