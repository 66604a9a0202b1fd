"""Console → API keys: create (the secret shown once), list, rotate, revoke, recent activity.

Thin views over loyalty.api_keys. Only a team's owner or admins (and superusers) get here;
every lookup goes through ``request.team`` and the key's public id, so another team's key is
a 404. A new key's plaintext exists only in the POST response that created it: it is never
put in the session, a message, a URL or a log, and that response is marked ``no-store``.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_safe

from .. import api_keys, errors
from ..models import ApiKey, ApiRequestLog, Team
from .auth import console_view, forbidden
from .forms import ApiKeyCreateForm

KEYS_PAGE_SIZE = 25
ACTIVITY_PAGE_SIZE = 50
ONLY_ADMINS = "Only the team's owner or an admin can see or manage API keys."


# --- reads ------------------------------------------------------------------------------------


def team_api_keys(*, team: Team) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.filter(team=team)
        .select_related("created_by", "rotated_from")
        .order_by("-created_at", "-id")
    )


def key_activity(*, key: ApiKey) -> QuerySet[ApiRequestLog]:
    return ApiRequestLog.objects.filter(team_id=key.team_id, api_key=key).order_by(
        "-created_at", "-id"
    )


def preset_of(key: ApiKey) -> str | None:
    """The preset a key's scopes amount to, if any (shown beside the scopes)."""
    for name, scopes in api_keys.PRESETS.items():
        if set(key.scopes) == set(scopes):
            return name
    return None


# --- helpers ----------------------------------------------------------------------------------


def _deny(request):
    return None if request.is_team_admin else forbidden(request, ONLY_ADMINS)


def _team_key(request, key_id: str) -> ApiKey:
    key = get_object_or_404(
        ApiKey.objects.select_related("created_by", "rotated_from"),
        team=request.team,
        public_id=key_id,
    )
    key.preset = preset_of(key)
    return key


def _show_once(request, *, key: ApiKey, plaintext: str, rotated: ApiKey | None = None):
    """The one and only page that ever shows this plaintext."""
    key.preset = preset_of(key)
    context = {"key": key, "plaintext": plaintext, "rotated": rotated}
    response = render(request, "console/api_keys_created.html", context)
    add_never_cache_headers(response)  # no-store: not kept by the browser or any proxy
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- views ------------------------------------------------------------------------------------


@require_safe
@console_view
def api_key_list(request):
    if denied := _deny(request):
        return denied
    page = Paginator(team_api_keys(team=request.team), KEYS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    for key in page.object_list:
        key.preset = preset_of(key)
    return render(request, "console/api_keys.html", {"page": page})


@require_http_methods(["GET", "POST"])
@console_view
@sensitive_variables("plaintext")
def api_key_new(request):
    if denied := _deny(request):
        return denied
    form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            key, plaintext = api_keys.api_key_create(
                team=request.team, created_by=request.user, **form.service_kwargs()
            )
        except errors.LoyaltyError as e:
            form.add_error(e.field if e.field in form.fields else None, e.message)
        else:
            return _show_once(request, key=key, plaintext=plaintext)
    return render(request, "console/api_keys_new.html", {"form": form})


@require_safe
@console_view
def api_key_detail(request, key_id: str):
    key = _team_key(request, key_id)
    if denied := _deny(request):
        return denied
    page = Paginator(key_activity(key=key), ACTIVITY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "console/api_keys_detail.html", {"key": key, "page": page})


@require_http_methods(["GET", "POST"])
@console_view
@sensitive_variables("plaintext")
def api_key_rotate(request, key_id: str):
    key = _team_key(request, key_id)
    if denied := _deny(request):
        return denied
    if request.method == "POST":
        try:
            new_key, plaintext = api_keys.api_key_rotate(key=key, created_by=request.user)
        except errors.LoyaltyError as e:
            messages.error(request, f"{key.name} ({key.prefix}…): {e.message}")
            return redirect("console:api_keys")
        return _show_once(request, key=new_key, plaintext=plaintext, rotated=key)
    return render(request, "console/api_keys_confirm.html", {"key": key, "action": "rotate"})


@require_http_methods(["GET", "POST"])
@console_view
def api_key_revoke(request, key_id: str):
    key = _team_key(request, key_id)
    if denied := _deny(request):
        return denied
    if request.method == "POST":
        if key.revoked_at is not None:
            messages.info(request, f"{key.name} ({key.prefix}…) was already revoked.")
            return redirect("console:api_keys")
        try:
            api_keys.api_key_revoke(key=key)
        except errors.LoyaltyError as e:
            messages.error(request, f"{key.name} ({key.prefix}…): {e.message}")
        else:
            messages.success(
                request, f"Revoked {key.name} ({key.prefix}…). Calls with it now get 401."
            )
        return redirect("console:api_keys")
    return render(request, "console/api_keys_confirm.html", {"key": key, "action": "revoke"})
