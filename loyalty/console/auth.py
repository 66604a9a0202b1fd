"""Who may use the console, and for which team.

Every console view runs under ``console_view``: it signs anonymous users in, picks the current
team from the session among ``tenancy.teams_for(user)`` (never from the URL or a form alone),
and puts it on ``request.team``. Each object lookup in a view is then filtered by that team.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from ..models import Team
from ..tenancy import is_team_admin, role_in, teams_for

SESSION_TEAM = "console:team"


def current_team(request, teams) -> Team | None:
    pk = request.session.get(SESSION_TEAM)
    team = teams.filter(pk=pk).first() if pk is not None else None
    # A stale choice (role revoked, team deleted) silently falls back to the first team.
    return team or teams.order_by("name", "pk").first()


def choose_team(request, slug: str) -> Team | None:
    team = teams_for(request.user).filter(slug=slug).first()
    if team is not None:
        request.session[SESSION_TEAM] = team.pk
    return team


def forbidden(request, message: str):
    return render(request, "console/forbidden.html", {"message": message}, status=403)


def console_view(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        teams = teams_for(request.user)
        team = current_team(request, teams)
        if team is None:
            return forbidden(
                request,
                "Your account is not part of any team yet. Ask your team's owner to add "
                "you, then sign in again.",
            )
        request.team, request.teams = team, teams.order_by("name", "pk")
        request.role = role_in(request.user, team)
        request.is_team_admin = is_team_admin(request.user, team)
        return view(request, *args, **kwargs)

    return wrapper


def require_team_admin(request):
    """A 403 response when the user may only look, else None (call after the object lookup,
    so another team's id is a 404 before it is a 403)."""
    if request.is_team_admin:
        return None
    return forbidden(request, "Only the team's owner or an admin can release or void held awards.")
