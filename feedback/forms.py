from django import forms
from django.conf import settings
from django.utils import timezone

from .models import Flag, Volunteer


def language_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in settings.CODEPREF["LANGUAGES"]]


class SignupExtrasForm(forms.Form):
    """Added to allauth's sign-up form: the contribution terms and the languages a volunteer knows."""

    languages = forms.MultipleChoiceField(
        choices=language_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
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


class TermsForm(forms.Form):
    """For accounts made without the sign-up form (GitHub, the admin, the demo): accept the terms once."""

    accept_terms = SignupExtrasForm.base_fields["accept_terms"]

    def save(self, user) -> None:
        volunteer, _ = Volunteer.objects.get_or_create(user=user)
        volunteer.accepted_terms_at = timezone.now()
        volunteer.accepted_licence = settings.CODEPREF["CONTRIBUTION_LICENCE"]
        volunteer.save(update_fields=["accepted_terms_at", "accepted_licence"])


SCREEN_CHOICES = [
    ("left", "A (left) is better"),
    ("right", "B (right) is better"),
    ("tie", "tie"),
    ("both_bad", "both bad"),
]


class VoteForm(forms.Form):
    pair = forms.IntegerField(min_value=1)
    choice = forms.ChoiceField(choices=SCREEN_CHOICES)
    key = forms.CharField(max_length=64)
    rationale = forms.CharField(max_length=280, required=False, strip=True)


class SkipForm(forms.Form):
    pair = forms.IntegerField(min_value=1)


class ReportForm(forms.Form):
    pair = forms.IntegerField(min_value=1)
    reason = forms.ChoiceField(choices=Flag.Reason.choices, widget=forms.RadioSelect)
    note = forms.CharField(max_length=500, required=False, strip=True)
