"""Back office. Every queryset is scoped to the teams of the signed-in staff user, and every
balance change goes through loyalty.services (the ledger itself is read-only here)."""

from django.contrib import admin, messages

from . import errors, services
from .models import (
    ADMIN_ROLES,
    ApiIdempotencyRecord,
    ApiKey,
    ApiRequestLog,
    Coupon,
    EarningPolicy,
    HeldAward,
    HoldStatus,
    LedgerEntry,
    Member,
    OutboxEvent,
    Reward,
    Store,
    Team,
    TeamMembership,
    Tier,
    UnrecoveredPoints,
)
from .tenancy import teams_for


class TeamScopedAdmin(admin.ModelAdmin):
    """Shows a staff user only rows of their teams; admins of a team may edit, others read."""

    team_field = "team"
    edit_roles = ADMIN_ROLES

    def _team_ids(self, request, roles=None) -> frozenset[int]:
        # Asked for every model on every admin page (the sidebar): read once per request.
        cache = request.__dict__.setdefault("_flash_team_ids", {})
        key = tuple(roles) if roles else None
        if key not in cache:
            cache[key] = frozenset(
                teams_for(request.user, roles=roles).values_list("pk", flat=True)
            )
        return cache[key]

    def _teams(self, request, roles=None):
        return Team.objects.filter(pk__in=self._team_ids(request, roles))

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.team_field}__in": self._teams(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team":
            kwargs["queryset"] = self._teams(request, self.edit_roles)
        elif db_field.name in ("member", "tier", "reward") and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(
                team__in=self._teams(request)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request):
        return request.user.is_superuser or bool(self._team_ids(request))

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        if request.user.is_superuser:
            return True
        allowed = self._team_ids(request, self.edit_roles)
        if obj is None:
            return bool(allowed)
        return self._team_id(obj) in allowed

    has_add_permission = has_change_permission

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def _team_id(self, obj):
        return getattr(obj, f"{self.team_field}_id")


class ReadOnlyAdmin(TeamScopedAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    team_field = "pk"
    list_display = ("name", "slug", "plan", "currency", "daily_cap", "negative_balance")
    search_fields = ("name", "slug")

    def get_queryset(self, request):
        return self._teams(request) if not request.user.is_superuser else Team.objects.all()

    def _team_id(self, obj):
        return obj.pk

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser  # new tenants are made by system admins


@admin.register(TeamMembership)
class TeamMembershipAdmin(TeamScopedAdmin):
    list_display = ("user", "team", "role")
    list_filter = ("role",)
    autocomplete_fields = ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            from django.contrib.auth import get_user_model

            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(team_roles__team__in=self._teams(request))
                .distinct()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(EarningPolicy)
class EarningPolicyAdmin(TeamScopedAdmin):
    list_display = ("team", "currency", "rate")


@admin.register(Tier)
class TierAdmin(TeamScopedAdmin):
    list_display = ("name", "team", "threshold", "multiplier")


@admin.register(Reward)
class RewardAdmin(TeamScopedAdmin):
    list_display = ("name", "team", "points_cost", "valid_days", "active")


@admin.register(Store)
class StoreAdmin(TeamScopedAdmin):
    list_display = ("public_id", "code", "name", "team", "status")
    search_fields = ("code", "name", "public_id")


@admin.register(Member)
class MemberAdmin(TeamScopedAdmin):
    list_display = ("public_id", "email", "name", "team", "status", "tier", "balance")
    list_filter = ("status",)
    search_fields = ("public_id", "email", "name")
    readonly_fields = ("public_id", "balance", "lifetime_points", "tier", "enrolled_at")
    fields = (
        "team",
        "public_id",
        "email",
        "name",
        "status",
        "is_test",
        "tier",
        "balance",
        "lifetime_points",
        "enrolled_at",
    )

    def get_readonly_fields(self, request, obj=None):
        # A member's team and e-mail identify them; they are set at enrollment only.
        return self.readonly_fields + (("team", "email") if obj else ())

    def has_add_permission(self, request, obj=None):
        return False  # members enroll themselves through the portal

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger keeps them


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "member", "points", "kind", "source", "description", "created_at")
    list_filter = ("kind", "source")
    search_fields = ("public_id", "member__public_id", "member__email", "idempotency_key")
    list_select_related = ("member",)


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "code", "member", "status", "expires_at", "redeemed_at")
    list_filter = ("status",)
    search_fields = ("public_id", "code", "member__public_id")
    list_select_related = ("member",)


@admin.register(HeldAward)
class HeldAwardAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "member",
        "points",
        "amount",
        "currency",
        "reason",
        "status",
        "created_at",
    )
    list_filter = ("status", "reason")
    list_select_related = ("member",)
    actions = ["release", "void"]

    def get_actions(self, request):
        # Read-only for everyone, but admins of a team may still decide its held awards.
        actions = super().get_actions(request)
        if not (request.user.is_superuser or self._team_ids(request, ADMIN_ROLES)):
            actions.clear()
        return actions

    def _decide(self, request, queryset, decide):
        allowed = self._team_ids(request, ADMIN_ROLES)
        done = 0
        for hold in queryset.filter(status=HoldStatus.HELD):
            if not request.user.is_superuser and hold.team_id not in allowed:
                continue
            try:
                decide(hold)
                done += 1
            except errors.LoyaltyError as exc:
                self.message_user(request, f"{hold.public_id}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} held award(s) updated.")

    @admin.action(description="Release selected held awards")
    def release(self, request, queryset):
        self._decide(request, queryset, lambda h: services.hold_release(hold=h, actor=request.user))

    @admin.action(description="Void selected held awards")
    def void(self, request, queryset):
        self._decide(request, queryset, lambda h: services.hold_void(hold=h, actor=request.user))


@admin.register(UnrecoveredPoints)
class UnrecoveredPointsAdmin(ReadOnlyAdmin):
    """Points a refund could not take back (the team stops balances at zero). A record, not a
    debt to collect here: a correction, if any, is a points adjustment on the member."""

    list_display = ("public_id", "member", "points", "reverses", "entry", "created_at")
    search_fields = ("public_id", "member__public_id", "member__email", "reverses__public_id")
    list_select_related = ("member", "reverses", "entry")
    fields = (
        "public_id",
        "team",
        "member",
        "points",
        "reverses",
        "entry",
        "description",
        "created_at",
    )
    readonly_fields = fields


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("event_type", "team", "created_at", "dispatched_at")
    list_filter = ("event_type",)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Keys are created, rotated and revoked in Console → API keys; only the hash is stored,
    and it is not shown here either."""

    list_display = (
        "public_id",
        "name",
        "prefix",
        "team",
        "rate_limit",
        "last_used_at",
        "revoked_at",
    )
    fields = (
        "public_id",
        "team",
        "name",
        "prefix",
        "scopes",
        "rate_limit",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "rotated_from",
    )
    readonly_fields = fields


@admin.register(ApiRequestLog)
class ApiRequestLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "api_key", "method", "path", "status", "latency_ms", "client_ip")
    list_filter = ("status", "method")
    list_select_related = ("api_key",)


@admin.register(ApiIdempotencyRecord)
class ApiIdempotencyRecordAdmin(ReadOnlyAdmin):
    team_field = "api_key__team"
    list_display = ("key", "api_key", "status", "created_at")
    list_select_related = ("api_key",)

    def _team_id(self, obj):
        return obj.api_key.team_id
