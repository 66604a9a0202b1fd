"""Domain errors: each has a stable code and a message a person can act on."""


class LoyaltyError(Exception):
    code = "loyalty_error"
    status = 400  # the HTTP status an API maps it to

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # the input at fault, when one is


class NotFound(LoyaltyError):
    code = "not_found"
    status = 404


class InvalidInput(LoyaltyError):
    code = "invalid_request"


class MemberBlocked(LoyaltyError):
    code = "member_blocked"
    status = 409


class AlreadyEnrolled(LoyaltyError):
    code = "already_enrolled"
    status = 409


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"
    status = 409


class CouponNotRedeemable(LoyaltyError):
    code = "coupon_not_redeemable"
    status = 404


class IllegalTransition(LoyaltyError):
    code = "illegal_transition"
    status = 409


class IdempotencyConflict(LoyaltyError):
    code = "idempotency_conflict"
    status = 409


class NegativeBalance(InsufficientPoints):
    """The balance is below zero (a refund reversed points already spent): nothing can be
    redeemed until purchases bring it back. A kind of InsufficientPoints, so callers that
    handle that one handle this too."""

    code = "negative_balance"
    status = 409
