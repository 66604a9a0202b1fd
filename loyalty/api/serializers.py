"""Request and response shapes of the v2 API (camelCase, as integrators know it)."""

import re
from decimal import Decimal

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_POINTS = 10_000_000
# A positive amount with at most two decimals, as a string: money never passes through float.
MONEY_PATTERN = r"^([1-9][0-9]{0,7}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"


class StrictCharField(serializers.CharField):
    """A string, and only a string: 0 or true are not silently turned into "0" or "True"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, not "120" or 120.0 or true."""

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(
    {"type": "integer", "minimum": -MAX_POINTS, "maximum": MAX_POINTS, "not": {"enum": [0]}}
)
class NonZeroPoints(StrictIntegerField):
    """Signed points, never zero (the schema says so too, so a fuzzer knows)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


def ident_field(help_text: str, required: bool = True) -> StrictCharField:
    return StrictCharField(
        max_length=100,
        required=required,
        help_text=help_text,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,99}$",
                "Use letters, digits and . _ : # / - (up to 100).",
            )
        ],
    )


@extend_schema_field({"type": "string", "pattern": MONEY_PATTERN, "example": "240.00"})
class MoneyField(serializers.Field):
    default_error_messages = {
        "invalid": "Must be a positive amount with at most two decimals, as a string "
        'such as "240.00".',
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.match(MONEY_PATTERN, data):
            self.fail("invalid")
        return Decimal(data)

    def to_representation(self, value):
        return str(value)


class PointsRequest(serializers.Serializer):
    amount = NonZeroPoints(
        min_value=-MAX_POINTS,
        max_value=MAX_POINTS,
        help_text="Points to add; negative for a compensating adjustment (needs points:adjust)",
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class HeldPart(serializers.Serializer):
    holdId = serializers.CharField()
    points = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    releaseAt = serializers.DateTimeField(required=False, help_text="When pending points vest")


class PointsResponse(serializers.Serializer):
    transactionId = serializers.CharField(allow_null=True)
    balance = serializers.IntegerField()
    points = serializers.IntegerField(help_text="Points granted now")
    held = HeldPart(
        required=False, allow_null=True, help_text="The part held for staff (daily cap, no rate)"
    )
    pending = HeldPart(
        required=False,
        allow_null=True,
        help_text="Purchase points pending the team's return window (vesting)",
    )


class PurchaseRequest(serializers.Serializer):
    orderId = ident_field("Your order id; the purchase is idempotent on it")
    amount = MoneyField()
    currency = StrictCharField(
        required=False,
        help_text="ISO 4217; defaults to the team's currency",
        validators=[RegexValidator(r"^[A-Za-z]{3}$", "A three-letter ISO 4217 code.")],
    )
    storeId = StrictCharField(max_length=40, required=False)
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class RefundRequest(serializers.Serializer):
    amount = MoneyField()
    refundId = ident_field(
        "Your refund id: a replay of it claws back once. Without it, the Idempotency-Key "
        "header plays that role.",
        required=False,
    )


class RefundResponse(serializers.Serializer):
    transactionId = serializers.CharField()
    points = serializers.IntegerField(help_text="Points reversed (negative)")
    balance = serializers.IntegerField()


class Transaction(serializers.Serializer):
    transactionId = serializers.CharField()
    amount = serializers.IntegerField(help_text="Signed points")
    kind = serializers.CharField()
    source = serializers.CharField()
    description = serializers.CharField()
    createdAt = serializers.DateTimeField()
    purchaseAmount = serializers.CharField(allow_null=True)
    currency = serializers.CharField(allow_null=True)


class LedgerPage(serializers.Serializer):
    balance = serializers.IntegerField()
    transactions = Transaction(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class TierResponse(serializers.Serializer):
    tier = serializers.CharField(allow_null=True)
    multiplier = serializers.CharField()
    nextTier = serializers.CharField(allow_null=True)
    pointsToNextTier = serializers.IntegerField()
    lifetimePoints = serializers.IntegerField()


class CouponOut(serializers.Serializer):
    couponId = serializers.CharField()
    code = serializers.CharField()
    status = serializers.CharField()
    reward = serializers.CharField(allow_null=True)
    expiresAt = serializers.DateTimeField()
    redeemedAt = serializers.DateTimeField(allow_null=True)


class CouponList(serializers.Serializer):
    coupons = CouponOut(many=True)


class RedeemResponse(serializers.Serializer):
    couponId = serializers.CharField()
    status = serializers.CharField()
    redeemedAt = serializers.DateTimeField()


class StoreOut(serializers.Serializer):
    id = serializers.CharField()
    code = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()


class StorePage(serializers.Serializer):
    stores = StoreOut(many=True)
    total = serializers.IntegerField()


class MemberOut(serializers.Serializer):
    id = serializers.CharField()
    email = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    tier = serializers.CharField(allow_null=True)
    balance = serializers.IntegerField()
    enrolledAt = serializers.DateTimeField()


class MemberPage(serializers.Serializer):
    members = MemberOut(many=True)
    total = serializers.IntegerField()


class ErrorBody(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class ErrorResponse(serializers.Serializer):
    error = ErrorBody()
