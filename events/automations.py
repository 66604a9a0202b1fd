"""The team's e-mail automations: welcome, "you just earned N points", and cross-sell.

Each (kind, event) is sent at most once, decided by the ``EmailSent`` unique constraint: the row
is inserted first and the e-mail sent in the same transaction. A twin sending the same e-mail
concurrently waits on that row and then gets an IntegrityError (already sent); a failed send
rolls the row back, so a retry of the task can still send it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from loyalty.models import Member, MemberStatus, OutboxEvent, Reward

from .catalog import AUTOMATIONS_FOR
from .models import AutomationKind, EmailAutomation, EmailSent

log = logging.getLogger(__name__)

CROSS_SELL_REWARDS = 3


@dataclass(frozen=True)
class Mail:
    subject: str
    template: str
    context: dict


def automation_send(*, kind: str, event_id: int) -> bool:
    """Send ``kind``'s e-mail for the event if the team has it on; True if sent now."""
    event = OutboxEvent.objects.select_related("team").filter(pk=event_id).first()
    if event is None or kind not in AUTOMATIONS_FOR.get(event.event_type, ()):
        return False
    if not EmailAutomation.objects.filter(team_id=event.team_id, kind=kind, enabled=True).exists():
        return False  # switched off since the event was dispatched
    member = (
        Member.objects.select_related("team")
        .filter(team_id=event.team_id, public_id=(event.payload or {}).get("memberId"))
        .first()
    )
    if member is None or member.status == MemberStatus.BLOCKED or not member.email:
        return False
    mail = compose(kind, event=event, member=member)
    if mail is None:
        return False
    try:
        with transaction.atomic():
            EmailSent.objects.create(team_id=event.team_id, kind=kind, member=member, event=event)
            _message(mail, member).send()
    except IntegrityError:
        return False  # already sent for this event
    log.info("automation %s sent for event %s to member %s", kind, event.pk, member.public_id)
    return True


def _message(mail: Mail, member: Member) -> EmailMultiAlternatives:
    ctx = mail.context | {"member": member, "team": member.team, "subject": mail.subject}
    text = render_to_string(f"events/email/{mail.template}.txt", ctx)
    html = render_to_string(f"events/email/{mail.template}.html", ctx)
    message = EmailMultiAlternatives(
        subject=mail.subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[member.email],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message


def compose(kind: str, *, event: OutboxEvent, member: Member) -> Mail | None:
    """The e-mail for one automation and event, or None when there is nothing to say."""
    team = member.team
    if kind == AutomationKind.WELCOME:
        return Mail(
            subject=f"Welcome to {team.name} rewards",
            template="welcome",
            context={"rewards": _rewards_within_reach(member)},
        )
    if kind == AutomationKind.POST_PURCHASE:
        data = event.payload or {}
        points = _whole(data.get("points"))
        pending = bool(data.get("pending"))
        if points > 0:
            subject = f"You just earned {points:,} points" + (" (pending)" if pending else "")
        else:
            subject = f"Thanks for your purchase at {team.name}"
        return Mail(
            subject=subject,
            template="post_purchase",
            context={
                "points": points,
                "pending": pending,
                "vesting_days": team.vesting_days,
                "amount": data.get("amount"),
                "currency": data.get("currency"),
            },
        )
    if kind == AutomationKind.CROSS_SELL:
        rewards = _rewards_within_reach(member)
        if not rewards:
            return None  # nothing to suggest: no e-mail rather than an empty one
        return Mail(
            subject=f"Rewards within reach at {team.name}",
            template="cross_sell",
            context={"rewards": rewards},
        )
    return None


@dataclass(frozen=True)
class Suggestion:
    name: str
    description: str
    cost: int
    away: int  # points still needed; 0 = can redeem now


def _rewards_within_reach(member: Member) -> list[Suggestion]:
    """What the member can redeem now (the best of it), then the next rewards up."""
    rewards = list(
        Reward.objects.filter(team_id=member.team_id, active=True).order_by("points_cost", "pk")
    )
    affordable = [r for r in rewards if r.points_cost <= member.balance]
    above = [r for r in rewards if r.points_cost > member.balance]
    picked = affordable[-1:] + above[: CROSS_SELL_REWARDS - min(len(affordable), 1)]
    return [
        Suggestion(
            name=r.name,
            description=r.description,
            cost=r.points_cost,
            away=max(r.points_cost - member.balance, 0),
        )
        for r in picked
    ]


def _whole(value) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0
