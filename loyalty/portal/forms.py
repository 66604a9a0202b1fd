"""Portal forms. They check shape only; the services decide what is allowed."""

import secrets

from django import forms

NONCE_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


class EnrollForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=200, required=False)
    email = forms.EmailField(
        label="E-mail", widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password",
        min_length=8,
        help_text="At least 8 characters.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class LoginForm(forms.Form):
    email = forms.EmailField(
        label="E-mail", widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class RedeemForm(forms.Form):
    """One per reward on the page. The nonce is minted when the form is drawn, so submitting
    the same form twice (a double tap, a resubmit after a timeout) buys one coupon, while
    redeeming the same reward again later is a new form with a new nonce."""

    reward = forms.IntegerField(widget=forms.HiddenInput)
    nonce = forms.RegexField(regex=NONCE_PATTERN, widget=forms.HiddenInput)

    @classmethod
    def for_reward(cls, reward) -> "RedeemForm":
        return cls(initial={"reward": reward.pk, "nonce": secrets.token_urlsafe(18)})
