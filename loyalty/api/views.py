"""The v2 REST API. Thin views: parse, call loyalty services or selectors, shape the answer.

Every lookup goes through the key's team, so another team's object is a plain 404."""

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty import errors, selectors, services
from loyalty.models import (
    Coupon,
    EntryKind,
    HeldAward,
    HoldReason,
    LedgerEntry,
    MemberStatus,
    Source,
    Store,
)

from . import serializers as s
from .idempotency import HEADER, KEY_PATTERN, run_idempotent

MEMBER_ID = OpenApiParameter(
    "memberId",
    str,
    OpenApiParameter.PATH,
    examples=[OpenApiExample("member", value="mem_demo00000000000000001")],
)
IDEMPOTENCY = OpenApiParameter(
    HEADER,
    {"type": "string", "pattern": KEY_PATTERN.pattern, "maxLength": 200},
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retry safe: the same key and body return the first answer; "
    "the same key with another body is a 409.",
)
MAX_OFFSET = 1_000_000_000
ERRORS = {code: s.ErrorResponse for code in (400, 401, 403, 404, 409, 429)}


def _paging(default: int) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 200},
            description=f"1–200, default {default}; more is refused",
        ),
        OpenApiParameter(
            "offset",
            {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
            description="default 0",
        ),
    ]


def _limit_offset(request, default: int, maximum: int) -> tuple[int, int]:
    values = {}
    for name, fallback, top in (("limit", default, maximum), ("offset", 0, MAX_OFFSET)):
        raw = request.query_params.get(name, fallback)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise errors.InvalidInput(f"{name} must be a whole number.", field=name) from None
        low = 1 if name == "limit" else 0
        if not low <= value <= top:
            bound = f"between {low} and {top}"
            raise errors.InvalidInput(f"{name} must be {bound} (got {value}).", field=name)
        values[name] = value
    return values["limit"], values["offset"]


class V2View(APIView):
    scopes: dict[str, str] = {}
    query_params: tuple[str, ...] = ()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # A typo such as ?limt=5 must not be silently ignored.
        if unknown := sorted(set(request.query_params) - set(self.query_params)):
            raise errors.InvalidInput(f"Unknown query parameter '{unknown[0]}'.", field=unknown[0])

    def required_scope(self, request) -> str | None:
        # None for a method the view does not serve: it answers 405 after authentication.
        return self.scopes.get(request.method)

    @property
    def team(self):
        return self.request.auth.team

    def member(self, member_id: str):
        return selectors.member_get(team=self.team, public_id=member_id)

    def validated(self, serializer_class):
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _hold_answer(hold) -> dict | None:
    if hold is None:
        return None
    answer = {"holdId": hold.public_id, "points": hold.points, "reason": hold.reason}
    if hold.release_at:
        answer["releaseAt"] = hold.release_at
    return answer


def _award_answer(result: services.AwardResult, balance: int) -> dict:
    return {
        "transactionId": result.entry.public_id if result.entry else None,
        "balance": balance,
        "points": result.points,
        "held": _hold_answer(result.held),
        "pending": _hold_answer(result.pending),
    }


class MemberPoints(V2View):
    http_method_names = ["get", "post"]
    query_params = ("limit", "offset")

    def required_scope(self, request):
        if request.method == "GET":
            return "points:read"
        if request.method != "POST":
            return None
        amount = request.data.get("amount") if isinstance(request.data, dict) else None
        return "points:adjust" if isinstance(amount, int) and amount < 0 else "points:write"

    @extend_schema(
        operation_id="awardPoints",
        parameters=[MEMBER_ID, IDEMPOTENCY],
        request=s.PointsRequest,
        responses={200: s.PointsResponse, **ERRORS},
        examples=[
            OpenApiExample(
                "award on a sale",
                request_only=True,
                value={
                    "amount": 120,
                    "description": "In-store purchase · store ST-NYC-01 · txn 90871",
                },
            ),
            OpenApiExample(
                "answer",
                response_only=True,
                value={
                    "transactionId": "txn_4k2m9q0c7x1z5v8b3n6p",
                    "balance": 1820,
                    "points": 120,
                    "held": None,
                },
            ),
        ],
        description="Award points (needs points:write) or, with a negative amount, post a "
        "compensating adjustment (needs points:adjust).",
    )
    def post(self, request, memberId):
        member = self.member(memberId)
        data = self.validated(s.PointsRequest)

        def handle(idem_key):
            key = f"api:{request.auth.public_id}:{idem_key or 'auto-' + uuid.uuid4().hex}"
            if data["amount"] < 0:
                entry = services.points_adjust(
                    member=member,
                    points=data["amount"],
                    source=Source.API,
                    key=key,
                    description=data["description"],
                )
                answer = {"transactionId": entry.public_id, "points": entry.points, "held": None}
            else:
                result = services.points_award(
                    member=member,
                    points=data["amount"],
                    source=Source.API,
                    key=key,
                    description=data["description"],
                )
                answer = _award_answer(result, balance=0)
            answer["balance"] = self.member(memberId).balance  # after this change, either way
            return Response(answer)

        return run_idempotent(request, handle)

    @extend_schema(
        operation_id="listPoints",
        parameters=[MEMBER_ID, *_paging(50)],
        responses={200: s.LedgerPage, **ERRORS},
    )
    def get(self, request, memberId):
        member = self.member(memberId)
        limit, offset = _limit_offset(request, 50, 200)
        entries = LedgerEntry.objects.filter(member=member).order_by("-created_at", "-id")
        rows = entries[offset : offset + limit]
        return Response(
            {
                "balance": member.balance,
                "transactions": [
                    {
                        "transactionId": e.public_id,
                        "amount": e.points,
                        "kind": e.kind,
                        "source": e.source,
                        "description": e.description,
                        "createdAt": e.created_at,
                        "purchaseAmount": str(e.amount) if e.amount is not None else None,
                        "currency": e.currency or None,
                    }
                    for e in rows
                ],
                "total": entries.count(),
                "limit": limit,
                "offset": offset,
            }
        )


class MemberPurchases(V2View):
    http_method_names = ["post"]
    scopes = {"POST": "points:write"}

    @extend_schema(
        operation_id="recordPurchase",
        parameters=[MEMBER_ID],
        request=s.PurchaseRequest,
        responses={200: s.PointsResponse, **ERRORS},
        examples=[
            OpenApiExample(
                "an OMS order",
                request_only=True,
                value={"orderId": "SO-44821", "amount": "240.00", "currency": "USD"},
            )
        ],
        description="Earn by the team's formula (rate × tier multiplier, daily cap). "
        "Idempotent on orderId: a replay answers the same; another amount is a 409.",
    )
    def post(self, request, memberId):
        member = self.member(memberId)
        data = self.validated(s.PurchaseRequest)
        currency = data.get("currency", self.team.currency).upper()
        description = data["description"] or f"Order {data['orderId']}"
        source = Source.API
        if store_id := data.get("storeId"):
            store = Store.objects.filter(team=self.team, public_id=store_id).first()
            if store is None:
                raise errors.NotFound("No store with that storeId.", field="storeId")
            description, source = f"{description} · {store.code}", Source.STORE

        def handle(_):
            key = f"order:{data['orderId']}"
            result = services.points_award(
                member=member,
                key=key,
                source=source,
                amount=data["amount"],
                currency=currency,
                description=description,
            )
            original = result.entry or result.pending or result.held
            if (
                original.member_id != member.pk
                or original.amount != data["amount"]
                or original.currency != currency
            ):
                raise errors.IdempotencyConflict(
                    "This orderId was already recorded with another member, amount or currency."
                )
            return Response(_award_answer(result, self.member(memberId).balance))

        return run_idempotent(request, handle)


class PurchaseRefunds(V2View):
    http_method_names = ["post"]
    scopes = {"POST": "points:write"}  # bounded by what the order earned

    @extend_schema(
        operation_id="refundPurchase",
        parameters=[MEMBER_ID, IDEMPOTENCY],
        request=s.RefundRequest,
        responses={200: s.RefundResponse, **ERRORS},
        examples=[
            OpenApiExample(
                "a partial return",
                request_only=True,
                value={"amount": "60.00", "refundId": "RMA-1009"},
            )
        ],
        description="Claw back, proportionally, what the order earned (never re-computed "
        "with today's rate or tier).",
    )
    def post(self, request, memberId, orderId):
        member = self.member(memberId)
        data = self.validated(s.RefundRequest)
        key = f"order:{orderId}"
        bought = (
            LedgerEntry.objects.filter(
                member=member, kind=EntryKind.EARN, idempotency_key=key
            ).exists()
            or HeldAward.objects.filter(
                member=member, reason=HoldReason.VESTING, idempotency_key=key
            ).exists()
        )
        if not bought:
            raise errors.NotFound("No purchase with that orderId for this member.")

        def handle(idem_key):
            refund = data.get("refundId") or idem_key or uuid.uuid4().hex
            # Points still pending their return window are reduced instead of clawed back.
            entry = services.purchase_refund(
                team=self.team,
                key=key,
                refund_amount=data["amount"],
                source=Source.API,
                refund_key=f"claw-back:order:{orderId}:{refund}",
                description=f"Refund of order {orderId}",
            )
            return Response(
                {
                    "transactionId": entry.public_id,
                    "points": entry.points,
                    "balance": self.member(memberId).balance,
                }
            )

        return run_idempotent(request, handle)


class MemberTier(V2View):
    http_method_names = ["get"]
    scopes = {"GET": "members:read"}

    @extend_schema(
        operation_id="getTier", parameters=[MEMBER_ID], responses={200: s.TierResponse, **ERRORS}
    )
    def get(self, request, memberId):
        member = self.member(memberId)
        progress = selectors.tier_progress(member)
        tier, nxt = progress["tier"], progress["next_tier"]
        return Response(
            {
                "tier": tier.name if tier else None,
                "multiplier": str(tier.multiplier if tier else 1),
                "nextTier": nxt.name if nxt else None,
                "pointsToNextTier": progress["points_to_next"],
                "lifetimePoints": member.lifetime_points,
            }
        )


def _coupon(c: Coupon) -> dict:
    return {
        "couponId": c.public_id,
        "code": c.code,
        "status": c.status,
        "reward": c.reward.name if c.reward else None,
        "expiresAt": c.expires_at,
        "redeemedAt": c.redeemed_at,
    }


class MemberCoupons(V2View):
    http_method_names = ["get"]
    scopes = {"GET": "coupons:read"}

    @extend_schema(
        operation_id="listCoupons", parameters=[MEMBER_ID], responses={200: s.CouponList, **ERRORS}
    )
    def get(self, request, memberId):
        member = self.member(memberId)
        coupons = member.coupons.select_related("reward").order_by("-created_at")
        return Response({"coupons": [_coupon(c) for c in coupons]})


class CouponRedeem(V2View):
    http_method_names = ["post"]
    scopes = {"POST": "coupons:redeem"}

    @extend_schema(
        operation_id="redeemCoupon",
        request=None,
        parameters=[OpenApiParameter("couponId", str, OpenApiParameter.PATH), IDEMPOTENCY],
        responses={200: s.RedeemResponse, **ERRORS},
        description="Mark a coupon used at the register. 404 = not found or already redeemed "
        "(do not honour it).",
    )
    def post(self, request, couponId):
        def handle(_):
            coupon = services.coupon_redeem(team=self.team, coupon_id=couponId)
            return Response(
                {
                    "couponId": coupon.public_id,
                    "status": coupon.status,
                    "redeemedAt": coupon.redeemed_at,
                }
            )

        return run_idempotent(request, handle)


class Stores(V2View):
    http_method_names = ["get"]
    query_params = ("limit", "offset")
    scopes = {"GET": "stores:read"}

    @extend_schema(
        operation_id="listStores",
        parameters=_paging(200),
        responses={200: s.StorePage, **ERRORS},
    )
    def get(self, request):
        limit, offset = _limit_offset(request, 200, 200)
        stores = Store.objects.filter(team=self.team).order_by("id")
        return Response(
            {
                "stores": [
                    {"id": st.public_id, "code": st.code, "name": st.name, "status": st.status}
                    for st in stores[offset : offset + limit]
                ],
                "total": stores.count(),
            }
        )


class Members(V2View):
    http_method_names = ["get"]
    query_params = ("status", "limit", "offset")
    scopes = {"GET": "members:read"}

    @extend_schema(
        operation_id="listMembers",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=MemberStatus.values),
            *_paging(200),
        ],
        responses={200: s.MemberPage, **ERRORS},
    )
    def get(self, request):
        limit, offset = _limit_offset(request, 200, 200)
        members = self.team.members.select_related("tier").order_by("id")
        if (status := request.query_params.get("status")) is not None:
            if status not in MemberStatus.values:
                raise errors.InvalidInput(
                    f"status must be one of {', '.join(MemberStatus.values)}.", field="status"
                )
            members = members.filter(status=status)
        return Response(
            {
                "members": [
                    {
                        "id": m.public_id,
                        "email": m.email,
                        "name": m.name,
                        "status": m.status,
                        "tier": m.tier.name if m.tier else None,
                        "balance": m.balance,
                        "enrolledAt": m.enrolled_at,
                    }
                    for m in members[offset : offset + limit]
                ],
                "total": members.count(),
            }
        )
