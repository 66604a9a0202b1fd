"""Creating tenants and their staff (used by the commands, the demo and the tests)."""

from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction

from . import errors
from .models import EarningPolicy, Plan, Role, Team, TeamMembership


@transaction.atomic
def team_create(
    *,
    name: str,
    slug: str,
    plan: str = Plan.STARTER,
    currency: str = "USD",
    rate="1",
    daily_cap: int | None = None,
) -> Team:
    try:
        validate_slug(slug)
    except ValidationError:
        raise errors.InvalidInput("A slug uses letters, digits, '-' and '_' only.") from None
    if plan not in Plan.values:
        raise errors.InvalidInput(f"Plan must be one of {', '.join(Plan.values)}.")
    currency = currency.strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise errors.InvalidInput("Currency is a three-letter ISO code such as USD.")
    try:
        rate = Decimal(str(rate))
    except InvalidOperation:
        raise errors.InvalidInput(f"'{rate}' is not a rate.") from None
    if not rate.is_finite() or rate < 0:
        raise errors.InvalidInput("The earning rate must be zero or more.")
    if daily_cap is not None and daily_cap < 0:
        raise errors.InvalidInput("The daily cap must be zero or more.")
    try:
        with transaction.atomic():
            team = Team.objects.create(
                name=name.strip(), slug=slug, plan=plan, currency=currency, daily_cap=daily_cap
            )
    except IntegrityError:
        raise errors.InvalidInput(f"A team with slug '{slug}' already exists.") from None
    EarningPolicy.objects.create(team=team, currency=currency, rate=rate)
    return team


@transaction.atomic
def staff_create(*, team: Team, email: str, password: str, role: str):
    """A staff user (logs in with the e-mail) holding ``role`` in ``team``."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise errors.InvalidInput("Enter a valid e-mail address.") from None
    if role not in Role.values:
        raise errors.InvalidInput(f"Role must be one of {', '.join(Role.values)}.")
    User = get_user_model()
    user, created = User.objects.get_or_create(username=email, defaults={"email": email})
    if created or password:
        user.set_password(password)
    user.is_staff = True
    user.save()
    TeamMembership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return user
