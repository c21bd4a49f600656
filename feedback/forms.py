from django import forms
from django.conf import settings
from django.utils import timezone

from .models import Volunteer


def language_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in settings.CODEPREF["LANGUAGES"]]


class SignupExtrasForm(forms.Form):
    """Added to allauth's sign-up form: the contribution terms and the languages a volunteer knows."""

    languages = forms.MultipleChoiceField(
        choices=language_choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Prompts in these languages are shown to you first.",
    )
    accept_terms = forms.BooleanField(
        required=True,
        label="I release my rankings and rationales under the contribution licence",
        error_messages={"required": "You must accept the contribution terms to rank."},
    )

    def signup(self, request, user) -> None:
        volunteer, _ = Volunteer.objects.get_or_create(user=user)
        volunteer.languages = self.cleaned_data.get("languages") or []
        volunteer.accepted_terms_at = timezone.now()
        volunteer.accepted_licence = settings.CODEPREF["CONTRIBUTION_LICENCE"]
        volunteer.save()
