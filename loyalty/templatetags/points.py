"""Points as people read them: thousands separated, and a true minus sign below zero."""

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def signed_points(value) -> str:
    # U+2212 is read out as "minus" by screen readers, where a hyphen is often skipped.
    return intcomma(value).replace("-", "\u2212")


@register.filter
def points_below_zero(value) -> str:
    """How many points a negative balance has to earn back to reach zero."""
    try:
        return intcomma(max(0, -int(value)))
    except (TypeError, ValueError):
        return ""
