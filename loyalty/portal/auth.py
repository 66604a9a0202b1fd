"""Member sign-in for the portal.

Members are not Django users: a portal session holds the member's pk under one key per team,
so being signed in to one brand's portal never signs the same browser in to another's.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.clickjacking import xframe_options_exempt

from ..models import Member, MemberStatus, Team


def session_key(team: Team) -> str:
    return f"member:{team.pk}"


def authenticate(*, team: Team, email: str, password: str) -> Member | None:
    """The member whose password matches, or None. Blocked members are returned: the caller
    says why they cannot sign in only after the password proved who is asking."""
    member = Member.objects.filter(team=team, email=(email or "").strip().lower()).first()
    if member is None:
        # Hash anyway so an unknown e-mail takes as long as a wrong password (no enumeration
        # by timing), as Django's ModelBackend does.
        make_password(password)
        return None
    return member if check_password(password, member.password) else None


def login(request, member: Member) -> None:
    # A new session id at sign-in defeats session fixation (a planted cookie stays anonymous).
    request.session.cycle_key()
    request.session[session_key(member.team)] = member.pk


def logout(request, team: Team) -> None:
    request.session.pop(session_key(team), None)
    request.session.cycle_key()


def current_member(request, team: Team) -> Member | None:
    pk = request.session.get(session_key(team))
    if pk is None:
        return None
    member = (
        Member.objects.filter(team=team, pk=pk)
        .exclude(status=MemberStatus.BLOCKED)
        .select_related("team", "tier")
        .first()
    )
    if member is None:  # deleted or blocked since sign-in: the session ends here
        request.session.pop(session_key(team), None)
    return member


def frame_ancestors() -> str:
    sources = [s for s in settings.PORTAL_FRAME_ANCESTORS if s]
    return "frame-ancestors " + (" ".join(sources) if sources else "'self'")


def portal_view(view=None, *, login_required: bool = True):
    """Wraps a portal view: resolves the team from the URL (404 if unknown), the signed-in
    member of that team (or a redirect to its login page), and makes the page embeddable only
    by the origins in ``PORTAL_FRAME_ANCESTORS`` (CSP replaces X-Frame-Options here, because
    X-Frame-Options cannot name several allowed sites)."""

    def decorate(view):
        @xframe_options_exempt
        @wraps(view)
        def wrapper(request, team_slug: str, *args, **kwargs):
            team = get_object_or_404(Team, slug=team_slug)
            request.team = team
            request.member = current_member(request, team)
            if login_required and request.member is None:
                response = redirect("portal:login", team_slug=team.slug)
            else:
                response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = frame_ancestors()
            return response

        return wrapper

    return decorate(view) if view is not None else decorate
