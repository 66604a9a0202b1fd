from django.core.management.base import CommandError

from loyalty.models import Team


def team_by_slug(slug: str) -> Team:
    try:
        return Team.objects.get(slug=slug)
    except Team.DoesNotExist:
        raise CommandError(f"No team with slug '{slug}'.") from None
