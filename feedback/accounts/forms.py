from django import forms
from django.conf import settings

from .services import volunteer_terms_accept


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
        volunteer_terms_accept(user=user, languages=self.cleaned_data.get("languages") or [])


class TermsForm(forms.Form):
    """For accounts made without the sign-up form (GitHub, the admin, the demo): accept the terms once."""

    accept_terms = SignupExtrasForm.base_fields["accept_terms"]
