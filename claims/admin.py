"""The review queue: reviewers and admins of a team see its claims (pending review first),
look at the verified order, the red flags, the member's history and the audit, and approve or
reject. Every change goes through ``claims.services``; nothing of a claim is edited here.

The changelist answers with a constant number of queries however many claims there are: the
related rows come in the same query, and what the red flags need (the member's claims today, the
team's median verified total) is annotated, never fetched per row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DecimalField,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from channels_app.models import Channel
from loyalty.admin import ReadOnlyAdmin, TeamScopedAdmin
from loyalty.errors import LoyaltyError

from . import policy, services
from .models import ApprovalPolicy, Claim, ClaimStatus, ClaimTransition, Rollout, VerifiedOrder

S = ClaimStatus

# Red-flag thresholds
MANY_CLAIMS_TODAY = 3
LARGE_AMOUNT = Decimal("500")
LARGE_VS_MEDIAN = 3

REJECT_REASONS = [
    ("order not found on the account", "Order not found on the account"),
    ("suspected fraud", "Suspected fraud"),
    ("duplicate", "Duplicate"),
    ("order cancelled or returned", "Order cancelled or returned"),
    ("other", "Other (say why below)"),
]
BULK_REJECT_REASON = "bulk rejected by reviewer"


class Median(Aggregate):
    """percentile_cont(0.5) on PostgreSQL; other databases fall back to the mean."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DecimalField(max_digits=14, decimal_places=2)


def _median_of(field: str):
    return Median(field) if connection.vendor == "postgresql" else Avg(field)


def _start_of_today():
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


# --- filters ---------------------------------------------------------------------------------


class ChannelFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        channels = Channel.objects.filter(
            team__in=model_admin._teams(request), kind__in=services.CLAIM_KINDS
        ).order_by("kind", "name")
        return [(c.public_id, str(c)) for c in channels]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(channel__public_id=self.value())
        return queryset


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [("today", "Today"), ("7d", "Past 7 days"), ("older", "Older than 7 days")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "today":
            return queryset.filter(created_at__gte=_start_of_today())
        if self.value() == "7d":
            return queryset.filter(created_at__gte=now - timedelta(days=7))
        if self.value() == "older":
            return queryset.filter(created_at__lt=now - timedelta(days=7))
        return queryset


class BuyerMatchFilter(admin.SimpleListFilter):
    title = "buyer postal match"
    parameter_name = "buyer_match"

    def lookups(self, request, model_admin):
        return [
            ("match", "match"),
            ("no_match", "no match"),
            ("unavailable", "unavailable"),
            ("not_given", "not given"),
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(postal_match=self.value())
        return queryset


class AmountFilter(admin.SimpleListFilter):
    title = "amount"
    parameter_name = "amount"

    def lookups(self, request, model_admin):
        return [("lt50", "under 50"), ("50-200", "50 – 200"), ("gt200", "over 200")]

    def queryset(self, request, queryset):
        if self.value() == "lt50":
            return queryset.filter(verified_order__total__lt=50)
        if self.value() == "50-200":
            return queryset.filter(verified_order__total__gte=50, verified_order__total__lte=200)
        if self.value() == "gt200":
            return queryset.filter(verified_order__total__gt=200)
        return queryset


class PolicyFilter(admin.SimpleListFilter):
    title = "auto-approval"
    parameter_name = "policy"

    def lookups(self, request, model_admin):
        return [
            ("approved", "Approved by the policy"),
            ("held", "Held by a policy rule"),
            ("none", "Not judged by a policy"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "approved":
            return queryset.filter(approved_by_policy=True)
        if self.value() == "held":
            return queryset.filter(policy_version__isnull=False, approved_by_policy=False)
        if self.value() == "none":
            return queryset.filter(policy_version__isnull=True)
        return queryset


# --- forms -----------------------------------------------------------------------------------


class RejectForm(forms.Form):
    reason_choice = forms.ChoiceField(label="Reason", choices=[("", "—")] + REJECT_REASONS)
    reason = forms.CharField(label="Details for the member", required=False, max_length=250)

    def clean(self):
        data = super().clean()
        if data.get("reason_choice") == "other" and not (data.get("reason") or "").strip():
            raise forms.ValidationError("Say why in the details when the reason is “other”.")
        return data

    def full_reason(self) -> str:
        choice = self.cleaned_data["reason_choice"]
        text = (self.cleaned_data.get("reason") or "").strip()
        if choice == "other":
            return text
        return f"{choice}: {text}" if text else choice


# --- red flags -------------------------------------------------------------------------------


def red_flags(claim: Claim) -> list[str]:
    """What a reviewer should look at twice, from the claim's related rows and annotations."""
    flags = []
    order = claim.verified_order
    member = claim.member
    if order is not None and order.purchased_at and member.enrolled_at > order.purchased_at:
        flags.append("member joined after the purchase date")
    if claim.postal_match == "no_match":
        flags.append("buyer postal code does not match")
    today = getattr(claim, "member_claims_today", 0) or 0
    if today >= MANY_CLAIMS_TODAY:
        flags.append(f"{today} claims by this member today")
    if order is not None and order.total is not None:
        median = getattr(claim, "team_median_total", None)
        if order.total > LARGE_AMOUNT:
            flags.append(f"large amount ({order.total} {order.currency})")
        elif median and order.total > LARGE_VS_MEDIAN * median:
            flags.append(f"amount over {LARGE_VS_MEDIAN}× the team's median ({median:.2f})")
        if not order.delivered:
            flags.append("order not yet delivered")
    return flags


def _who(step: ClaimTransition) -> str:
    if step.actor is not None:
        return step.actor.get_username()
    if step.reason.startswith("approved by policy"):
        return "auto-approval policy"
    return "system"


# --- the queue -------------------------------------------------------------------------------


@admin.register(Claim)
class ClaimAdmin(TeamScopedAdmin):
    list_display = (
        "public_id",
        "member_col",
        "channel_col",
        "order_number",
        "status_col",
        "total_col",
        "stake_col",
        "match_col",
        "flags_col",
        "policy_col",
        "age_col",
    )
    list_display_links = ("public_id",)
    list_select_related = ("member", "channel", "verified_order", "team")
    list_filter = (
        ChannelFilter,
        "status",
        PolicyFilter,
        AgeFilter,
        BuyerMatchFilter,
        AmountFilter,
    )
    search_fields = ("=public_id", "order_number", "member__email", "=member__public_id")
    show_full_result_count = False
    list_per_page = 50
    actions = ["approve_selected", "reject_selected"]
    fieldsets = (
        (
            "Claim",
            {
                "fields": (
                    "public_id",
                    "status_words_col",
                    "member_col",
                    "member_joined",
                    "channel",
                    "order_number",
                    "postal_match",
                    "created_at",
                    "reviewed_by",
                    "reviewed_at",
                )
            },
        ),
        ("Verified order (no buyer data)", {"fields": ("order_panel", "points_col")}),
        ("Red flags", {"fields": ("flags_panel",)}),
        ("Auto-approval policy", {"fields": ("policy_panel",)}),
        ("Member's other claims", {"fields": ("history_panel",)}),
        ("Audit", {"fields": ("audit_panel",)}),
    )
    readonly_fields = (
        "public_id",
        "status_words_col",
        "member_col",
        "member_joined",
        "channel",
        "order_number",
        "postal_match",
        "created_at",
        "reviewed_by",
        "reviewed_at",
        "order_panel",
        "points_col",
        "flags_panel",
        "policy_panel",
        "history_panel",
        "audit_panel",
    )

    # -- scoping and permissions: see and act on claims of one's teams; never add, edit, delete

    def get_queryset(self, request):
        today = Claim.objects.filter(
            member_id=OuterRef("member_id"), created_at__gte=_start_of_today()
        )
        median = (
            VerifiedOrder.objects.filter(team_id=OuterRef("team_id"), total__isnull=False)
            .order_by()
            .values("team_id")
            .annotate(m=_median_of("total"))
            .values("m")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_claims_today=Coalesce(
                    Subquery(
                        today.order_by()
                        .values("member_id")
                        .annotate(n=Count("pk"))
                        .values("n")[:1],
                        output_field=IntegerField(),
                    ),
                    0,
                ),
                team_median_total=Subquery(
                    median[:1], output_field=DecimalField(max_digits=14, decimal_places=2)
                ),
            )
        )

    def get_ordering(self, request):
        # pending_review first, then the newest
        rank = Case(
            When(status=S.PENDING_REVIEW, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return [rank.asc(), "-created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only page; decisions are the approve / reject buttons

    def has_delete_permission(self, request, obj=None):
        return False

    # -- columns

    @admin.display(description="member", ordering="member__email")
    def member_col(self, obj):
        return format_html("{}<br><small>{}</small>", obj.member.public_id, obj.member.email)

    @admin.display(description="channel", ordering="channel__name")
    def channel_col(self, obj):
        return obj.channel.name

    @admin.display(description="points at stake", ordering="points_preview")
    def stake_col(self, obj):
        return obj.points_preview if obj.points_preview is not None else "—"

    @admin.display(description="buyer match", ordering="postal_match")
    def match_col(self, obj):
        return obj.postal_match.replace("_", " ")

    @admin.display(description="status")
    def status_col(self, obj):
        return obj.get_status_display()

    @admin.display(description="status")
    def status_words_col(self, obj):
        words = f"{obj.get_status_display()} — {services.status_words(obj)}"
        if obj.approved_by_policy:
            words += f" ({policy.summary(obj)})"
        return words

    @admin.display(description="total", ordering="verified_order__total")
    def total_col(self, obj):
        order = obj.verified_order
        if order is None or order.total is None:
            return "—"
        return f"{order.total} {order.currency}"

    @admin.display(description="points at stake")
    def points_col(self, obj):
        if obj.points_awarded is not None:
            return f"{obj.points_awarded} (awarded)"
        return obj.points_preview if obj.points_preview is not None else "—"

    @admin.display(description="red flags")
    def flags_col(self, obj):
        n = len(red_flags(obj))
        return format_html('<span title="{}">⚑ {}</span>', "; ".join(red_flags(obj)), n) if n else 0

    @admin.display(description="auto-approval")
    def policy_col(self, obj):
        return policy.summary(obj) or "—"

    @admin.display(description="age", ordering="created_at")
    def age_col(self, obj):
        return timesince(obj.created_at).split(",")[0]

    @admin.display(description="member joined")
    def member_joined(self, obj):
        return obj.member.enrolled_at

    # -- change page panels

    @admin.display(description="order")
    def order_panel(self, obj):
        order = obj.verified_order
        if order is None:
            return "Not verified yet."
        rows = [
            ("Order id", order.order_id),
            ("Marketplace", order.marketplace or "—"),
            ("Platform status", order.status or "—"),
            ("Purchased", order.purchased_at or "—"),
            ("Total", f"{order.total} {order.currency}" if order.total is not None else "—"),
            ("Items", order.item_count),
            ("Cancelled", "yes" if order.cancelled else "no"),
            ("Delivered", "yes" if order.delivered else "no"),
            ("Buyer postal code", order.buyer_match or "—"),
            ("Verified", order.verified_at),
        ]
        return format_html(
            '<table class="claim-order">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    @admin.display(description="red flags")
    def flags_panel(self, obj):
        flags = red_flags(obj)
        if not flags:
            return "None"
        return format_html(
            '<ul class="red-flags">{}</ul>',
            format_html_join("", "<li>⚑ {}</li>", ((f,) for f in flags)),
        )

    @admin.display(description="rules")
    def policy_panel(self, obj):
        if obj.policy_version is None:
            return "Not judged by an auto-approval policy (none was on when it was verified)."
        head = policy.summary(obj)
        rows = [
            (
                "policy-pass" if r.get("passed") else "policy-fail",
                "✓ passed" if r.get("passed") else "✗ failed",
                r.get("label", r.get("rule", "")),
                r.get("detail", ""),
            )
            for r in obj.policy_results or []
        ]
        return format_html(
            '<p class="policy-summary">{}</p><table class="policy-results">'
            "<tr><th>result</th><th>rule</th><th>detail</th></tr>{}</table>",
            head,
            format_html_join("", '<tr class="{}"><td>{}</td><td>{}</td><td>{}</td></tr>', rows),
        )

    @admin.display(description="history")
    def history_panel(self, obj):
        others = (
            Claim.objects.filter(member_id=obj.member_id)
            .exclude(pk=obj.pk)
            .select_related("channel")
            .order_by("-created_at")[:50]
        )
        rows = [
            (
                reverse("admin:claims_claim_change", args=[c.pk]),
                c.public_id,
                c.channel,
                c.order_number,
                c.get_status_display(),
                c.created_at,
            )
            for c in others
        ]
        if not rows:
            return "No other claims."
        return format_html(
            "<table><tr><th>claim</th><th>channel</th><th>order</th><th>status</th>"
            "<th>submitted</th></tr>{}</table>",
            format_html_join(
                "",
                '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
                rows,
            ),
        )

    @admin.display(description="transitions")
    def audit_panel(self, obj):
        steps = ClaimTransition.objects.filter(claim=obj).select_related("actor")
        rows = [
            (
                t.created_at,
                t.get_from_status_display(),
                t.get_to_status_display(),
                _who(t),
                t.reason or "—",
            )
            for t in steps
        ]
        return format_html(
            "<table><tr><th>when</th><th>from</th><th>to</th><th>who</th><th>why</th></tr>"
            "{}</table>",
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
            ),
        )

    # -- approve / reject on the claim's page

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/approve/", view(self.approve_view), name="claims_claim_approve"),
            path("<path:object_id>/reject/", view(self.reject_view), name="claims_claim_reject"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "reject_form": RejectForm(),
            "show_close": True,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["policy_summary"] = policy.summary(obj)
            context["policy_failed"] = [
                r for r in obj.policy_results or [] if not r.get("passed", False)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _decide(self, request, object_id, decide, success):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse("admin:claims_claim_change", args=[obj.pk])
        if request.method != "POST":
            return redirect(change_url)
        try:
            done = decide(obj)
        except LoyaltyError as exc:
            self.message_user(request, f"{obj.public_id}: {exc.message}", messages.ERROR)
            return redirect(change_url)
        if done is None:
            return redirect(change_url)
        self.message_user(request, success(done), messages.SUCCESS)
        following = (
            self.get_queryset(request)
            .filter(status=S.PENDING_REVIEW)
            .exclude(pk=obj.pk)
            .order_by("created_at")
            .values_list("pk", flat=True)
            .first()
        )
        if following is not None:
            return redirect(reverse("admin:claims_claim_change", args=[following]))
        return redirect(reverse("admin:claims_claim_changelist"))

    def approve_view(self, request, object_id):
        def decide(claim):
            reason = (request.POST.get("reason") or "").strip()
            return services.claim_approve(claim=claim, reviewer=request.user, reason=reason)

        return self._decide(
            request,
            object_id,
            decide,
            lambda c: f"{c.public_id} approved: +{c.points_awarded} points for {c.member.email}.",
        )

    def reject_view(self, request, object_id):
        def decide(claim):
            form = RejectForm(request.POST)
            if not form.is_valid():
                errors = "; ".join(e for errs in form.errors.values() for e in errs)
                self.message_user(
                    request, f"Not rejected — choose a reason. {errors}", messages.ERROR
                )
                return None
            return services.claim_reject(
                claim=claim, reviewer=request.user, reason=form.full_reason()
            )

        return self._decide(
            request,
            object_id,
            decide,
            lambda c: f"{c.public_id} rejected: {c.status_reason}.",
        )

    # -- bulk actions

    def _bulk(self, request, queryset, decide, verb):
        done = 0
        skipped = queryset.exclude(status=S.PENDING_REVIEW).count()
        for claim in queryset.filter(status=S.PENDING_REVIEW).select_related("team"):
            try:
                decide(claim)
                done += 1
            except LoyaltyError as exc:
                self.message_user(request, f"{claim.public_id}: {exc.message}", messages.ERROR)
        note = f" ({skipped} not waiting for review, left alone)" if skipped else ""
        self.message_user(request, f"{done} claim(s) {verb}{note}.")

    @admin.action(description="Approve selected claims")
    def approve_selected(self, request, queryset):
        self._bulk(
            request,
            queryset,
            lambda c: services.claim_approve(
                claim=c, reviewer=request.user, reason="approved in bulk"
            ),
            "approved",
        )

    @admin.action(description="Reject selected claims…")
    def reject_selected(self, request, queryset):
        if "apply" in request.POST:
            form = RejectForm(request.POST)
            if form.is_valid():
                reason = form.full_reason()
                self._bulk(
                    request,
                    queryset,
                    lambda c: services.claim_reject(claim=c, reviewer=request.user, reason=reason),
                    "rejected",
                )
                return HttpResponseRedirect(request.get_full_path())
        else:
            form = RejectForm(initial={"reason": BULK_REJECT_REASON})
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject claims",
            "opts": self.opts,
            "claims": queryset,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/claims/claim/reject_selected.html", context)


# --- the rest of the claims data -------------------------------------------------------------


@admin.register(ClaimTransition)
class ClaimTransitionAdmin(ReadOnlyAdmin):
    team_field = "claim__team"
    list_display = ("claim", "from_status", "to_status", "actor", "reason", "created_at")
    list_filter = ("to_status",)
    search_fields = ("=claim__public_id",)
    list_select_related = ("claim", "actor")

    def _team_id(self, obj):
        return obj.claim.team_id


@admin.register(VerifiedOrder)
class VerifiedOrderAdmin(ReadOnlyAdmin):
    list_display = (
        "order_id",
        "channel",
        "status",
        "purchased_at",
        "total",
        "currency",
        "delivered",
        "buyer_match",
    )
    list_filter = ("delivered", "cancelled", "buyer_match")
    search_fields = ("order_id",)
    list_select_related = ("channel",)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ReadOnlyAdmin):
    """The policy versions are their own audit trail: read-only here. Team admins change the
    policy in Console → Claims, which writes a new version."""

    list_display = ("channel", "version", "enabled", "rules_col", "changed_by", "created_at")
    list_filter = ("enabled",)
    list_select_related = ("channel", "team", "changed_by")
    search_fields = ("=channel__public_id", "channel__name")

    @admin.display(description="rules")
    def rules_col(self, obj):
        return "; ".join(policy.rule_words(obj, obj.team.currency)) or "—"


@admin.register(Rollout)
class RolloutAdmin(TeamScopedAdmin):
    """Team admins move a channel's claims through off → staff → on (via the service)."""

    list_display = ("channel", "team", "stage", "claim_window_days", "updated_at")
    list_filter = ("stage",)
    list_select_related = ("channel", "team")
    fields = ("team", "channel", "stage", "claim_window_days", "updated_at")
    readonly_fields = ("team", "channel", "updated_at")

    def has_add_permission(self, request, obj=None):
        return False  # a rollout row is made with the channel's first stage change

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.rollout_set(
            channel=obj.channel, stage=obj.stage, claim_window_days=obj.claim_window_days
        )
