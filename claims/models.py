"""Missing-order claims: a member says "I bought this on Amazon / TikTok Shop", we verify the
order through the team's own channel and a reviewer approves the points.

Only the non-PII projection of a verified order is stored (``VerifiedOrder``); the postal code
a member types is compared in memory and only the verdict is kept. Every status change goes
through ``claims.services`` and leaves a ``ClaimTransition`` row in the same transaction."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from channels_app.models import Channel
from loyalty.models import Member, Team, public_id


def claim_id() -> str:
    return public_id("clm_")


class ClaimStatus(models.TextChoices):
    SUBMITTED = "submitted", "submitted"
    VERIFYING = "verifying", "verifying"
    RETRYING = "retrying", "retrying"
    PENDING_REVIEW = "pending_review", "pending review"
    APPROVED = "approved", "approved"
    AWARDED = "awarded", "awarded"
    REJECTED = "rejected", "rejected"
    NOT_FOUND = "not_found", "not found"
    INELIGIBLE = "ineligible", "ineligible"
    # Points were awarded, then the order was cancelled or refunded in full: clawed back.
    REVERSED = "reversed", "reversed"


# A claim in one of these states is finished: the order may be claimed again (e.g. after a
# rejection or a not-found, by correcting a typo), except that an awarded order never earns twice
# (the VerifiedOrder is unique and the award key is idempotent).
TERMINAL_STATUSES = (
    ClaimStatus.AWARDED,
    ClaimStatus.REJECTED,
    ClaimStatus.NOT_FOUND,
    ClaimStatus.INELIGIBLE,
    ClaimStatus.REVERSED,
)
ACTIVE_STATUSES = tuple(s for s in ClaimStatus if s not in TERMINAL_STATUSES)


class Stage(models.TextChoices):
    OFF = "off"
    STAFF = "staff", "staff test members only"
    ON = "on"


class Rollout(models.Model):
    """Graylaunch gate: may this team's members claim orders of this channel yet?"""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="claim_rollouts")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="claim_rollouts")
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.OFF)
    claim_window_days = models.PositiveIntegerField(
        default=90,
        validators=[MinValueValidator(1)],
        help_text="Orders older than this many days cannot be claimed",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "channel"], name="uniq_rollout_per_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} · {self.stage}"


class VerifiedOrder(models.Model):
    """The non-PII projection of a marketplace order that a claim verified (no buyer data
    beyond whether the postal code the member typed matched)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="verified_orders")
    order_id = models.CharField(max_length=100)
    marketplace = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=40, blank=True, help_text="The platform's own word")
    purchased_at = models.DateTimeField(null=True, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    item_count = models.PositiveIntegerField(default=0)
    cancelled = models.BooleanField(default=False)
    delivered = models.BooleanField(default=False)
    buyer_match = models.CharField(max_length=12, blank=True)
    refunded_total = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, help_text="Refunds the claw-back job applied"
    )
    verified_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "order_id"], name="uniq_verified_order"),
        ]

    def __str__(self) -> str:
        return f"{self.channel.kind}:{self.order_id}"


class Claim(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="claims")
    public_id = models.CharField(max_length=32, unique=True, editable=False, default=claim_id)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="claims")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="claims")
    order_number = models.CharField(max_length=100)
    # Whether a postal code was typed and how it compared. The code itself waits for the
    # verify task only vault-sealed, and is erased once verification ends.
    postal_match = models.CharField(max_length=12, default="not_given")
    sealed_postal_code = models.CharField(max_length=300, blank=True, editable=False)
    status = models.CharField(
        max_length=20, choices=ClaimStatus.choices, default=ClaimStatus.SUBMITTED
    )
    status_reason = models.CharField(max_length=300, blank=True)
    verified_order = models.ForeignKey(
        VerifiedOrder, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    points_preview = models.IntegerField(
        null=True, blank=True, help_text="What the order would earn by today's formula"
    )
    points_awarded = models.IntegerField(null=True, blank=True)
    ledger_entry = models.ForeignKey(
        "loyalty.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    points_reversed = models.IntegerField(
        default=0, help_text="Points clawed back since the award (refunds, cancellation)"
    )
    # The auto-approval policy version that judged this claim, and each rule's result
    # ([{"rule", "label", "passed", "detail"}]): shown to the reviewer when a rule failed.
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    policy_results = models.JSONField(default=list, blank=True)
    approved_by_policy = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "channel", "order_number"],
                condition=Q(status__in=[s.value for s in ACTIVE_STATUSES]),
                name="uniq_active_claim_per_order",
            ),
        ]
        indexes = [
            models.Index(fields=["team", "status", "created_at"]),
            models.Index(fields=["member", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.get_status_display()})"


class ClaimTransition(models.Model):
    """Audit trail: one row per status change, written with the change."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=ClaimStatus.choices)
    to_status = models.CharField(max_length=20, choices=ClaimStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.claim_id}: {self.from_status} → {self.to_status}"


class ApprovalPolicy(models.Model):
    """One version of a channel's auto-approval policy. Versions are never edited: every change
    is a new row (who, when, what), so the rows are the audit trail. The newest row is in force;
    with none, or with ``enabled`` off, every claim waits for a person."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="approval_policies")
    version = models.PositiveIntegerField()
    enabled = models.BooleanField(default=False)
    require_postal_match = models.BooleanField(default=False)
    max_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    require_delivered = models.BooleanField(default=False)
    min_member_days = models.PositiveIntegerField(null=True, blank=True)
    min_approved_claims = models.PositiveIntegerField(null=True, blank=True)
    max_per_member_month = models.PositiveIntegerField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["channel", "-version"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(fields=["channel", "version"], name="uniq_policy_version"),
            models.CheckConstraint(
                condition=Q(max_amount__isnull=True) | Q(max_amount__gte=0),
                name="policy_max_amount_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} · policy v{self.version} ({'on' if self.enabled else 'off'})"


class ClawbackStream(models.TextChoices):
    ORDERS = "orders", "changed orders"
    REFUNDS = "refunds", "refunds"


class ClawbackCursor(models.Model):
    """How far the claw-back job has read one channel's change feed. Saved after every page,
    so a restart resumes where the last run stopped: everything before ``watermark`` is done;
    a window in progress is [window_since, window_until) with ``page_token`` the next page."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="clawback_cursors")
    stream = models.CharField(max_length=10, choices=ClawbackStream.choices)
    watermark = models.DateTimeField()
    window_since = models.DateTimeField(null=True, blank=True)
    window_until = models.DateTimeField(null=True, blank=True)
    page_token = models.TextField(blank=True)
    # One run at a time per cursor: taken by a conditional update, expires if a worker dies.
    lease_until = models.DateTimeField(null=True, blank=True)
    pages_read = models.PositiveBigIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "stream"], name="uniq_clawback_cursor"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} · {self.stream} up to {self.watermark:%Y-%m-%d %H:%M}"
