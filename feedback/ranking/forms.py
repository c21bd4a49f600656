from django import forms

from feedback.models import Flag

from .limits import MAX_KEY_LENGTH, MAX_NOTE_LENGTH, MAX_RATIONALE_LENGTH

SCREEN_CHOICES = [
    ("left", "A (left) is better"),
    ("right", "B (right) is better"),
    ("tie", "tie"),
    ("both_bad", "both bad"),
]


class VoteForm(forms.Form):
    pair = forms.IntegerField(min_value=1)
    choice = forms.ChoiceField(choices=SCREEN_CHOICES)
    key = forms.CharField(max_length=MAX_KEY_LENGTH)
    rationale = forms.CharField(max_length=MAX_RATIONALE_LENGTH, required=False, strip=True)


class UndoForm(forms.Form):
    vote = forms.IntegerField(min_value=1)


class SkipForm(forms.Form):
    pair = forms.IntegerField(min_value=1)


class ReportForm(forms.Form):
    pair = forms.IntegerField(min_value=1)
    reason = forms.ChoiceField(choices=Flag.Reason.choices, widget=forms.RadioSelect)
    note = forms.CharField(max_length=MAX_NOTE_LENGTH, required=False, strip=True)
