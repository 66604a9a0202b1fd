"""Console forms: shape checks only; events.services decides what is allowed."""

from django import forms

from .catalog import EVENT_TYPES


class EndpointForm(forms.Form):
    ALL, SELECTED = "all", "selected"

    url = forms.URLField(
        label="Endpoint URL",
        max_length=500,
        assume_scheme="https",
        error_messages={
            "required": "Enter the URL Flash should POST events to.",
            "invalid": "Enter a full URL, e.g. https://hooks.example.com/flash.",
        },
        help_text="Flash POSTs each event here as JSON, signed with a secret shown on the next "
        "page.",
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/flash"}),
    )
    scope = forms.ChoiceField(
        label="Events",
        choices=[
            (ALL, "All events, including types added later"),
            (SELECTED, "Only the events ticked below"),
        ],
        initial=ALL,
        widget=forms.RadioSelect,
    )
    event_types = forms.MultipleChoiceField(
        label="Event types (for “Only the events ticked below”)",
        choices=[(name, f"{name} · {text}") for name, text in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self):
        data = super().clean()
        scope, types = data.get("scope"), data.get("event_types")
        if scope == self.SELECTED and not types:
            self.add_error("event_types", "Tick at least one event type, or choose all events.")
        elif scope == self.ALL and types:
            self.add_error("event_types", "Untick these or choose “Only the events ticked below”.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "url": data["url"],
            "event_types": data["event_types"] if data["scope"] == self.SELECTED else [],
        }
