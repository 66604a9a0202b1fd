"""Console forms: shape checks only; loyalty.services decides what is allowed."""

from django import forms


class MemberSearchForm(forms.Form):
    q = forms.CharField(
        label="Search members",
        required=False,
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": "e-mail, name or mem_ id"}),
    )


class HoldReleaseForm(forms.Form):
    # Only asked for when no rate applied, so the service has no points to grant by itself.
    points = forms.IntegerField(label="Points to grant", min_value=1, required=False)
    note = forms.CharField(label="Note", max_length=500, required=False)


class HoldVoidForm(forms.Form):
    note = forms.CharField(label="Reason", max_length=500, required=False)
