"""Claim errors: each a LoyaltyError with a stable code and a message a member can act on."""

from loyalty.errors import LoyaltyError


class AlreadyClaimed(LoyaltyError):
    code = "already_claimed"
    status = 409


class TooManyClaims(LoyaltyError):
    code = "too_many_claims"
    status = 429


class ClaimsClosed(LoyaltyError):
    code = "claims_closed"
    status = 403


class NotAllowed(LoyaltyError):
    code = "forbidden"
    status = 403
