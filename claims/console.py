"""Console → Claims: the graylaunch stage of order claims per marketplace channel, what is
waiting, and each channel's auto-approval policy. Team admins change stages and policies;
reviewers see the pages; another team's channel is a 404."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_POST

from channels_app.models import Channel, Kind, Status
from loyalty import errors
from loyalty.console.auth import console_view, forbidden

from . import policy, services
from .models import (
    ACTIVE_STATUSES,
    ApprovalPolicy,
    Claim,
    ClaimStatus,
    ClawbackCursor,
    Rollout,
    Stage,
)
from .services import CLAIM_KINDS

WARNING = (
    "Claims that pass every rule are approved and earn points without a person looking at "
    "them; with it off, every claim waits for a reviewer."
)
ADMINS_ONLY = "Only the team's owner or an admin can change the auto-approval policy."


@console_view
def claims_overview(request):
    channels = (
        Channel.objects.filter(team=request.team, kind__in=CLAIM_KINDS)
        .annotate(
            waiting=Count("claims", filter=Q(claims__status__in=ACTIVE_STATUSES)),
            to_review=Count("claims", filter=Q(claims__status=ClaimStatus.PENDING_REVIEW)),
            reversed=Count("claims", filter=Q(claims__status=ClaimStatus.REVERSED)),
        )
        .order_by("kind", "name")
    )
    clawback = _clawback_state(request.team)
    stages = dict(Rollout.objects.filter(team=request.team).values_list("channel_id", "stage"))
    policies = _policies_in_force(request.team)
    rows = [
        (
            ch,
            stages.get(ch.pk, Stage.OFF),
            ch.status == Status.NEEDS_ATTENTION,
            policies.get(ch.pk),
            clawback.get(ch.pk),
        )
        for ch in channels
    ]
    return render(request, "claims/console.html", {"rows": rows, "stages": Stage.choices})


@require_POST
@console_view
def clawback_now(request):
    """Check the team's marketplace refunds and cancellations now, instead of at the next run."""
    if not request.is_team_admin:
        return forbidden(request, "Only the team's owner or an admin can start a refund check.")
    from celery import current_app

    from .tasks import clawback_pass

    if current_app.conf.task_always_eager:
        reversals = clawback_pass(request.team.pk)
        messages.success(
            request,
            f"Refunds and cancellations checked: {reversals} reversal{pluralize(reversals)} made.",
        )
    else:
        clawback_pass.delay(request.team.pk)
        messages.success(
            request, "A refund check is on its way; this page shows its progress in a minute."
        )
    return redirect("claims_console:overview")


def _clawback_state(team) -> dict[int, dict]:
    """How far the refund claw-back job has read each channel: the older of its two feeds'
    watermarks, and the latest error of either."""
    state: dict[int, dict] = {}
    for cursor in ClawbackCursor.objects.filter(channel__team=team):
        row = state.setdefault(cursor.channel_id, {"checked_to": cursor.watermark, "error": ""})
        row["checked_to"] = min(row["checked_to"], cursor.watermark)
        row["error"] = row["error"] or cursor.last_error
    return state


def _policies_in_force(team) -> dict[int, ApprovalPolicy]:
    """The newest policy version of each of the team's channels, in one query."""
    newest = {}
    for p in ApprovalPolicy.objects.filter(team=team).order_by("channel_id", "-version"):
        newest.setdefault(p.channel_id, p)
    return newest


@require_POST
@console_view
def rollout_change(request, public_id: str):
    channel = Channel.objects.filter(team=request.team, public_id=public_id).first()
    if channel is None:
        raise Http404("No such channel in this team.")
    if not request.is_team_admin:
        return forbidden(request, "Only the team's owner or an admin can change the rollout.")
    try:
        rollout = services.rollout_set(channel=channel, stage=request.POST.get("stage", ""))
    except errors.LoyaltyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"{channel.name}: order claims are now {rollout.get_stage_display()}."
        )
    return redirect("claims_console:overview")


# --- the auto-approval policy ----------------------------------------------------------------

# Each limit rule: its checkbox, its number field.
LIMITS = (
    ("use_max_amount", "max_amount"),
    ("use_min_member_days", "min_member_days"),
    ("use_min_approved_claims", "min_approved_claims"),
    ("use_max_per_member_month", "max_per_member_month"),
)


class PolicyForm(forms.Form):
    enabled = forms.BooleanField(
        required=False, label="Approve claims that pass every rule automatically"
    )
    confirm = forms.BooleanField(
        required=False,
        label=(
            "I understand: claims that pass every rule will be approved and earn points "
            "without a person looking at them."
        ),
    )
    require_postal_match = forms.BooleanField(
        required=False,
        label="Buyer's postal code matched",
        help_text=(
            "The member typed the postal code the order shipped to, and it matched the one "
            "the marketplace has. Claims without a postal code fail this rule."
        ),
    )
    use_max_amount = forms.BooleanField(required=False, label="Order amount at most a limit")
    max_amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        label="Largest order amount",
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    require_delivered = forms.BooleanField(required=False, label="Order delivered")
    use_min_member_days = forms.BooleanField(required=False, label="Member enrolled for a while")
    min_member_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=policy.MAX_LIMIT,
        label="Days since the member joined, at least",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    use_min_approved_claims = forms.BooleanField(
        required=False, label="Member has approved claims and none rejected"
    )
    min_approved_claims = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=policy.MAX_LIMIT,
        label="Approved claims, at least",
        help_text=(
            "Claims a person or the policy approved before. A claim reversed by a refund does "
            "not count; any rejected claim fails this rule."
        ),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    use_max_per_member_month = forms.BooleanField(
        required=False, label="Limit auto-approvals per member"
    )
    max_per_member_month = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=policy.MAX_LIMIT,
        label="Auto-approvals per member per calendar month, at most",
        help_text="Further claims of that member that month wait for a reviewer.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    note = forms.CharField(required=False, max_length=300, label="Note for the history (optional)")

    def __init__(self, *args, channel: Channel, current: ApprovalPolicy | None, **kwargs):
        self.channel, self.current = channel, current
        if current is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {
                "enabled": current.enabled,
                "require_postal_match": current.require_postal_match,
                "require_delivered": current.require_delivered,
                **{
                    name: getattr(current, name)
                    for _, name in LIMITS
                    if getattr(current, name) is not None
                },
                **{use: getattr(current, name) is not None for use, name in LIMITS},
            }
        super().__init__(*args, **kwargs)
        currency = channel.team.currency
        self.fields["max_amount"].label = f"Largest order amount ({currency})"
        self.fields["max_amount"].help_text = (
            f"The order's total as the marketplace reports it. An order in another currency "
            f"than {currency} fails this rule (amounts are never converted)."
        )
        if channel.kind == Kind.AMAZON:
            self.fields["require_delivered"].help_text = (
                "Amazon's Orders API does not report delivery, so on this Amazon channel the "
                "rule never passes: with it ticked, every claim waits for a reviewer."
            )
        else:
            self.fields[
                "require_delivered"
            ].help_text = f"{Kind(channel.kind).label} reports the order as delivered or completed."

    def clean(self):
        data = super().clean()
        for use, name in LIMITS:
            if data.get(use) and data.get(name) is None and name not in self.errors:
                self.add_error(name, "Give a number for this rule, or untick the rule.")
        was_on = self.current is not None and self.current.enabled
        if data.get("enabled") and not was_on and not data.get("confirm"):
            self.add_error(
                "confirm",
                "Tick this box to confirm: claims that pass every rule will earn points "
                "without a reviewer.",
            )
        return data

    def rules(self) -> dict:
        data = self.cleaned_data
        rules = {
            "enabled": bool(data.get("enabled")),
            "require_postal_match": bool(data.get("require_postal_match")),
            "require_delivered": bool(data.get("require_delivered")),
        }
        for use, name in LIMITS:
            rules[name] = data.get(name) if data.get(use) else None
        return rules

    def rule_rows(self):
        """(checkbox, number or None) per rule, in the policy's order, for the template."""
        return [
            (self["require_postal_match"], None),
            (self["use_max_amount"], self["max_amount"]),
            (self["require_delivered"], None),
            (self["use_min_member_days"], self["min_member_days"]),
            (self["use_min_approved_claims"], self["min_approved_claims"]),
            (self["use_max_per_member_month"], self["max_per_member_month"]),
        ]


def _history(channel: Channel) -> list[tuple[ApprovalPolicy, list[str], list[str]]]:
    """Every version, newest first, with its rules and what it changed (the audit)."""
    currency = channel.team.currency
    versions = list(
        ApprovalPolicy.objects.filter(channel=channel)
        .select_related("changed_by")
        .order_by("version")
    )
    rows, previous = [], None
    for version in versions:
        rows.append(
            (
                version,
                policy.rule_words(version, currency),
                policy.changes(previous, version, currency),
            )
        )
        previous = version
    return rows[::-1]


@console_view
def policy_page(request, public_id: str):
    channel = (
        Channel.objects.filter(team=request.team, public_id=public_id, kind__in=CLAIM_KINDS)
        .select_related("team")
        .first()
    )
    if channel is None:
        raise Http404("No such channel in this team.")
    current = policy.current_policy(channel)
    status = 200
    if request.method == "POST":
        if not request.is_team_admin:
            return forbidden(request, ADMINS_ONLY)
        form = PolicyForm(request.POST, channel=channel, current=current)
        if form.is_valid():
            try:
                saved = policy.policy_change(
                    channel=channel,
                    actor=request.user,
                    note=form.cleaned_data.get("note", ""),
                    **form.rules(),
                )
            except errors.LoyaltyError as exc:
                field = exc.field if exc.field in form.fields else None
                form.add_error(field, exc.message)
            else:
                if current is not None and saved.pk == current.pk:
                    messages.info(request, f"Nothing changed: version {saved.version} stays.")
                elif saved.enabled:
                    messages.success(
                        request,
                        f"{channel.name}: auto-approval is on (version {saved.version}). "
                        f"{WARNING.split(';')[0]}.",
                    )
                else:
                    messages.success(
                        request,
                        f"{channel.name}: auto-approval is off (version {saved.version}); "
                        "every claim waits for a reviewer.",
                    )
                return redirect("claims_console:policy", public_id=channel.public_id)
        status = 400
    else:
        form = PolicyForm(channel=channel, current=current)
    judged = (
        Claim.objects.filter(channel=channel, policy_version__isnull=False)
        .select_related("verified_order")
        .order_by("-created_at")[:20]
    )
    context = {
        "channel": channel,
        "current": current,
        "current_rules": policy.rule_words(current, channel.team.currency) if current else [],
        "form": form,
        "history": _history(channel),
        "judged": [(c, policy.summary(c)) for c in judged],
        "warning": WARNING,
        "amazon_note": channel.kind == Kind.AMAZON,
    }
    return render(request, "claims/policy.html", context, status=status)
