"""Teams, members and the one points ledger.

Balances are written only by ``loyalty.services``; nothing here holds business logic.
"""

import secrets
import string

from django.conf import settings
from django.db import models
from django.db.models import Q

_ALPHABET = string.ascii_lowercase + string.digits


def public_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(20))


# Migrations need importable defaults, so one named function per prefix.
def member_id() -> str:
    return public_id("mem_")


def entry_id() -> str:
    return public_id("txn_")


def hold_id() -> str:
    return public_id("hold_")


def coupon_id() -> str:
    return public_id("cpn_")


def store_id() -> str:
    return public_id("st_")


def unrecovered_id() -> str:
    return public_id("unr_")


def _pid_field(default) -> models.CharField:
    return models.CharField(max_length=32, unique=True, editable=False, default=default)


class Plan(models.TextChoices):
    STARTER = "starter"
    GROWTH = "growth"
    OMNICHANNEL = "omnichannel"


class NegativeBalancePolicy(models.TextChoices):
    """What a claw-back does when the member already spent the points it reverses."""

    ALLOW = "allow", "Allow a negative balance (rewards locked until it is earned back)"
    STOP_AT_ZERO = "stop_at_zero", "Stop at zero and record the unrecovered rest for staff"


class Team(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.STARTER)
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code")
    daily_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most points a member may earn in one day; empty = no cap"
    )
    vesting_days = models.PositiveIntegerField(
        default=0,
        help_text="Purchase points stay pending this many days (the return window); 0 = off",
    )
    negative_balance = models.CharField(
        max_length=12,
        choices=NegativeBalancePolicy.choices,
        default=NegativeBalancePolicy.ALLOW,
        help_text="When a refund reverses points the member already spent: let the balance go "
        "below zero (rewards stay locked until it is earned back), or take back only what is "
        "left and record the rest as unrecovered for staff to see.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class EarningPolicy(models.Model):
    """Points earned per one unit of a currency (the team's earning rate)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="earning_policies")
    currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=12, decimal_places=4)

    class Meta:
        verbose_name_plural = "earning policies"
        constraints = [
            models.UniqueConstraint(fields=["team", "currency"], name="uniq_rate_per_currency"),
            models.CheckConstraint(condition=Q(rate__gte=0), name="rate_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.rate} pts / {self.currency}"


class Role(models.TextChoices):
    OWNER = "org_owner"
    ADMIN = "org_admin"
    REVIEWER = "reviewer"


ADMIN_ROLES = (Role.OWNER, Role.ADMIN)


class TeamMembership(models.Model):
    """A staff user's role in one team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_roles"
    )
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="uniq_role_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.role} of {self.team}"


class Tier(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=60)
    threshold = models.PositiveIntegerField(help_text="Lifetime points that qualify")
    multiplier = models.DecimalField(max_digits=5, decimal_places=2, default=1)

    class Meta:
        ordering = ["team", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["team", "threshold"], name="uniq_tier_threshold"),
            models.CheckConstraint(condition=Q(multiplier__gt=0), name="multiplier_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (×{self.multiplier})"


class MemberStatus(models.TextChoices):
    ACTIVE = "active"
    INACTIVE = "inactive"
    BLOCKED = "blocked"


class Member(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    public_id = _pid_field(member_id)
    email = models.EmailField(help_text="Stored lower-cased")
    name = models.CharField(max_length=200, blank=True)
    password = models.CharField(max_length=128, blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=MemberStatus.choices, default=MemberStatus.ACTIVE
    )
    is_test = models.BooleanField(
        default=False, help_text="Staff test member (may use features in staged rollout)"
    )
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL)
    balance = models.IntegerField(default=0, editable=False)
    lifetime_points = models.IntegerField(default=0, editable=False)
    enrolled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "email"], name="uniq_member_email"),
        ]
        indexes = [models.Index(fields=["team", "status", "id"])]

    def __str__(self) -> str:
        return f"{self.email} ({self.public_id})"


class EntryKind(models.TextChoices):
    EARN = "earn"
    ADJUST = "adjust"
    REDEEM = "redeem"
    CLAW_BACK = "claw_back"
    EXPIRE = "expire"


class Source(models.TextChoices):
    STORE = "store"
    API = "api"
    PORTAL = "portal"
    CONSOLE = "console"
    SHOPIFY = "shopify"
    AMAZON = "amazon"
    TIKTOK = "tiktok"


class LedgerEntry(models.Model):
    """One immutable change of one member's balance."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    public_id = _pid_field(entry_id)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="entries")
    points = models.IntegerField()
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    description = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=300, null=True, blank=True)
    # For purchases: what was bought and the rule applied, so a claw-back reverses
    # exactly what was earned instead of re-computing with today's rate or tier.
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    rate = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    multiplier = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    # Points that vested today were earned (and counted against the cap) on the purchase day.
    vested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["team", "idempotency_key"], name="uniq_entry_idempotency_key"
            ),
        ]
        indexes = [models.Index(fields=["member", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.public_id} {self.points:+d}"

    def save(self, *args, **kwargs):
        # Append-only: a correction is a new entry, never an edit of an old one.
        if self.pk is not None:
            raise ValueError("Ledger entries are immutable")
        super().save(*args, **kwargs)


class HoldReason(models.TextChoices):
    OVER_CAP = "over_cap", "Over the daily earning cap"
    NO_RATE = "no_rate", "No earning rate for this currency"
    CAP_UNAVAILABLE = "cap_unavailable", "Daily cap could not be checked"
    VESTING = "vesting", "Pending until the return window closes"


class HoldStatus(models.TextChoices):
    HELD = "held"
    RELEASED = "released"
    VOIDED = "voided"


class HeldAward(models.Model):
    """Points an award could not grant now; staff release or void them, never lost."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    public_id = _pid_field(hold_id)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="held_awards")
    points = models.IntegerField(null=True, blank=True, help_text="Unknown when no rate applies")
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    reason = models.CharField(max_length=20, choices=HoldReason.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    description = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=HoldStatus.choices, default=HoldStatus.HELD)
    # Vesting holds: when they turn into spendable points on their own (the return window's end),
    # what they started at, and how much of the purchase was refunded inside the window.
    release_at = models.DateTimeField(null=True, blank=True)
    original_points = models.IntegerField(null=True, blank=True)
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # What a purchase earned by the formula, so a refund can reduce a pending award exactly.
    rate = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    multiplier = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "idempotency_key"], name="uniq_hold_key"),
        ]
        indexes = [models.Index(fields=["team", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.get_reason_display()})"


class UnrecoveredPoints(models.Model):
    """Points a claw-back could not take back because the member had already spent them
    (teams that stop at zero). They count as reversed, so a later refund of the same purchase
    never tries to recover them again; staff see them in the console, never silently lost."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    public_id = _pid_field(unrecovered_id)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="unrecovered")
    reverses = models.ForeignKey(
        LedgerEntry,
        on_delete=models.PROTECT,
        related_name="unrecovered",
        help_text="The earn entry the refund reversed",
    )
    # The claw-back entry written for the same refund (0 points when nothing was left), so
    # its idempotency key is used exactly once and a replay finds it.
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="unrecovered_rest"
    )
    points = models.IntegerField(help_text="Points the claw-back could not recover")
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "unrecovered points"
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="unrecovered_points_positive"),
        ]
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.points} pts)"


class Reward(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rewards")
    name = models.CharField(max_length=200)
    description = models.CharField(max_length=500, blank=True)
    points_cost = models.PositiveIntegerField()
    valid_days = models.PositiveIntegerField(default=90, help_text="Coupon lifetime")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["points_cost"]
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_cost_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.points_cost} pts)"


class CouponStatus(models.TextChoices):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"


class Coupon(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    public_id = _pid_field(coupon_id)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="coupons")
    reward = models.ForeignKey(Reward, null=True, on_delete=models.SET_NULL)
    code = models.CharField(max_length=20, unique=True)
    status = models.CharField(
        max_length=10, choices=CouponStatus.choices, default=CouponStatus.ISSUED
    )
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="coupon")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"


class StoreStatus(models.TextChoices):
    ACTIVE = "active"
    INACTIVE = "inactive"


class Store(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="stores")
    public_id = _pid_field(store_id)
    code = models.CharField(max_length=40, help_text="Your own store code, e.g. ST-NYC-01")
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=StoreStatus.choices, default=StoreStatus.ACTIVE
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "code"], name="uniq_store_code"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class OutboxEvent(models.Model):
    """Transactional outbox: written with the change it describes, delivered later."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=60)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_undispatched",
                condition=Q(dispatched_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"


def api_key_id() -> str:
    return public_id("key_")


class ApiKey(models.Model):
    """An integrator's key, bound to one team. Only a hash of the secret is stored."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    public_id = _pid_field(api_key_id)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, help_text="The first characters, to recognise it")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    rate_limit = models.PositiveIntegerField(default=600, help_text="Requests per minute")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rotated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(rate_limit__gt=0), name="rate_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ApiRequestLog(models.Model):
    """One row per v2 API call: who, what, how it ended. Never bodies or secrets."""

    team = models.ForeignKey(Team, null=True, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.CASCADE, related_name="log")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField()
    latency_ms = models.PositiveIntegerField()
    client_ip = models.GenericIPAddressField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["api_key", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"


class ApiIdempotencyRecord(models.Model):
    """The first answer to an Idempotency-Key, replayed to every retry of the same request."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="uniq_idempotency_per_key"),
        ]

    def __str__(self) -> str:
        return self.key
