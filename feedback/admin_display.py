"""Display helpers every admin page shares. Untrusted text (prompts, completions, notes) is only ever shown
through Django's escaping (``format_html``), never marked safe."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

PREVIEW_CHARS = 80


def count_of(model, field: str) -> Coalesce:
    """A per-row count as a subquery: cheaper than a JOIN + GROUP BY, and the admin's COUNT(*) skips it."""
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def preview(text: str) -> str:
    return Truncator(" ".join((text or "").split())).chars(PREVIEW_CHARS)


def code(text: str):
    """Untrusted text as a literal block: format_html escapes it, so markup and template syntax show as typed."""
    return format_html('<pre class="codepref-text">{}</pre>', text or "")


class TextMedia:
    css = {"all": ["feedback/admin_ranking.css"]}


def link(obj, label=None):
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label if label is not None else str(obj))


class NamedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's per-value filter, with the blank value named: an empty link text is a link nobody can read
    aloud (axe: link-name)."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            yield {**choice, "display": "(blank)"} if choice.get("display") == "" else choice
