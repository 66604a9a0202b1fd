"""Console forms: shape checks only; loyalty.services decides what is allowed."""

from django import forms

from .. import api_keys
from ..models import NegativeBalancePolicy


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


class NegativeBalanceForm(forms.Form):
    negative_balance = forms.ChoiceField(
        label="When a refund reverses points a member already spent",
        choices=NegativeBalancePolicy.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose one of the two options."},
    )


SCOPE_HELP = {
    "members:read": "list and read members",
    "points:read": "read ledgers and tiers",
    "points:write": "award points",
    "points:adjust": "negative adjustments",
    "coupons:read": "read coupons",
    "coupons:redeem": "redeem coupons",
    "stores:read": "list stores",
}


class ApiKeyCreateForm(forms.Form):
    """A new integrator key: a preset, or the scopes ticked one by one."""

    CUSTOM = "custom"

    name = forms.CharField(
        label="Name",
        max_length=100,
        error_messages={"required": "Give the key a name, e.g. “Store POS”."},
        help_text="Who or what will use it, e.g. “Store POS” or “ERP nightly sync”.",
    )
    preset = forms.ChoiceField(
        label="Access",
        choices=[
            ("read", "Read only: members, points, coupons, stores"),
            ("write", "Read & write: read, plus award points and redeem coupons"),
            (CUSTOM, "Custom: only the scopes ticked below"),
        ],
        initial="read",
        error_messages={"required": "Choose the key's access: read only, read & write or custom."},
        widget=forms.RadioSelect,
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes (for Custom access)",
        choices=[(s, f"{s} · {SCOPE_HELP[s]}" if s in SCOPE_HELP else s) for s in api_keys.SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    rate_limit = forms.IntegerField(
        label="Rate limit (requests per minute)",
        min_value=1,
        max_value=1_000_000,
        initial=600,
        error_messages={
            "required": "Enter a rate limit: a whole number of requests per minute.",
            "invalid": "The rate limit is a whole number of requests per minute, e.g. 600.",
            "min_value": "The rate limit must be at least 1 request per minute.",
            "max_value": "The rate limit can be at most %(limit_value)s requests per minute.",
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}),
    )

    def clean(self):
        data = super().clean()
        preset, scopes = data.get("preset"), data.get("scopes")
        if preset == self.CUSTOM and not scopes:
            self.add_error("scopes", "Tick at least one scope, or choose a preset.")
        elif preset and preset != self.CUSTOM and scopes:
            self.add_error(
                "scopes", "Untick these scopes or choose Custom: a preset sets the scopes itself."
            )
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        custom = data["preset"] == self.CUSTOM
        return {
            "name": data["name"],
            "preset": None if custom else data["preset"],
            "scopes": data["scopes"] if custom else None,
            "rate_limit": data["rate_limit"],
        }
