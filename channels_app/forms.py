"""Channel forms, built from each adapter's declared config and secret fields."""

from django import forms

from .connectors import connector_class

SECRET_HELP = "Encrypted the moment it arrives and never shown again."


def channel_form(kind: str, data=None, *, channel=None, prefix=None) -> forms.Form:
    cls = connector_class(kind)
    fields = {
        "name": forms.CharField(
            label="Connection name",
            max_length=100,
            required=False,
            help_text="Tell two connections of one platform apart.",
        )
    }
    initial = {"name": channel.name} if channel else {}
    for f in cls.config_fields:
        fields[f.name] = forms.CharField(label=f.label, required=False, help_text=f.help)
        if channel is not None:
            value = channel.config.get(f.name, "")
            initial[f.name] = " ".join(value) if isinstance(value, list) else value
        elif f.default:
            initial[f.name] = f.default
    for f in cls.secret_fields:
        hint = channel.secret_hints.get(f.name) if channel else None
        if channel is not None and f.name in channel.sealed_secrets:
            help_text = f"saved · ends in …{hint}" if hint else "saved"
            help_text += " — leave blank to keep it."
        else:
            help_text = f.help or SECRET_HELP
        # render_value=False: a secret never travels back to the browser.
        fields[f.name] = forms.CharField(
            label=f.label,
            required=False,
            help_text=help_text,
            strip=False,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        )
    form_class = type(f"{kind.title()}ChannelForm", (forms.Form,), fields)
    form = form_class(data, initial=initial, prefix=prefix)
    form.config_names = [f.name for f in cls.config_fields]
    form.secret_names = [f.name for f in cls.secret_fields]
    return form


def split(form) -> tuple[str, dict, dict]:
    """(name, config, secrets) from a bound, valid channel form."""
    data = form.cleaned_data
    return (
        data.get("name", ""),
        {n: data[n] for n in form.config_names if data.get(n) not in (None, "")},
        {n: data[n] for n in form.secret_names if data.get(n)},
    )
