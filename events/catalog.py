"""The events a team can subscribe to, and which e-mail automations each one drives.

The outbox (``loyalty.services``) may emit more types than listed here; an endpoint that takes
"all events" receives those too. The list is what the console offers to filter on.
"""

from .models import AutomationKind

EVENT_TYPES: tuple[tuple[str, str], ...] = (
    ("member.enrolled", "A member joined the programme"),
    ("order.fulfilled", "A paid order earned points (any channel)"),
    ("purchase.first", "A member's first purchase"),
    ("purchase.repeat", "A repeat purchase"),
    ("points.awarded", "Points were granted"),
    ("points.pending", "Purchase points pending until the return window closes"),
    ("points.pending_reduced", "A refund reduced pending points"),
    ("points.held", "An award was held (over the daily cap, no earning rate)"),
    ("points.hold_voided", "A held award was voided"),
    ("points.adjusted", "A manual points adjustment"),
    ("points.clawed_back", "Points reversed after a refund"),
    ("points.unrecovered", "A refund could not take back points already spent (stop at zero)"),
    ("reward.redeemed", "A reward was redeemed for a coupon"),
    ("coupon.redeemed", "A coupon was used"),
)
EVENT_TYPE_NAMES = frozenset(name for name, _ in EVENT_TYPES)

# Which automations an event starts. A repeat purchase gets both the points e-mail and the
# cross-sell; each is its own (kind, event) and so is sent at most once.
AUTOMATIONS_FOR: dict[str, tuple[str, ...]] = {
    "member.enrolled": (AutomationKind.WELCOME,),
    "purchase.first": (AutomationKind.POST_PURCHASE,),
    "purchase.repeat": (AutomationKind.POST_PURCHASE, AutomationKind.CROSS_SELL),
}


def subscribed(event_types: list[str], event_type: str) -> bool:
    """An endpoint's filter: an empty list means every event, present and future."""
    return not event_types or event_type in event_types
