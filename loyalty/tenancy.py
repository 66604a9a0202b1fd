"""Which teams a staff user may see. Every tenant query starts here."""

from django.db.models import QuerySet

from .models import ADMIN_ROLES, Team, TeamMembership


def teams_for(user, *, roles=None) -> QuerySet[Team]:
    """Teams the user works in (with one of ``roles`` if given); all teams for a superuser."""
    if not user.is_authenticated or not user.is_active:
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    memberships = TeamMembership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return Team.objects.filter(pk__in=memberships.values("team_id"))


def role_in(user, team: Team) -> str | None:
    if user.is_superuser:
        return "superuser"
    return (
        TeamMembership.objects.filter(user=user, team=team).values_list("role", flat=True).first()
    )


def is_team_admin(user, team: Team) -> bool:
    return user.is_superuser or role_in(user, team) in ADMIN_ROLES
