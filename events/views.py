"""Console → Webhooks: endpoints (the signing secret shown once), their delivery log with
replay, and the team's e-mail automations.

Thin views over events.services. Only a team's owner or admins (and superusers) get here;
every lookup goes through ``request.team``, so another team's endpoint is a 404 (checked before
the role, so an id never tells a reviewer whether it exists elsewhere). A new endpoint's secret
exists only in the POST response that created it, marked ``no-store``.
"""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from loyalty import errors
from loyalty.console.auth import console_view, forbidden

from . import dispatch, selectors, services
from .forms import EndpointForm
from .models import AutomationKind, DeliveryState, EventDelivery, WebhookEndpoint

DELIVERIES_PAGE_SIZE = 50
ONLY_ADMINS = "Only the team's owner or an admin can see or manage webhooks and e-mail automations."


def _deny(request):
    return None if request.is_team_admin else forbidden(request, ONLY_ADMINS)


def _team_endpoint(request, endpoint_id: str) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, team=request.team, public_id=endpoint_id)


def _detail_url(endpoint: WebhookEndpoint, page: str | None = None) -> str:
    url = reverse("webhooks:detail", kwargs={"endpoint_id": endpoint.public_id})
    return f"{url}?page={page}" if page and page.isdigit() else url


@require_safe
@console_view
def endpoint_list(request):
    if denied := _deny(request):
        return denied
    context = {
        "endpoints": selectors.team_endpoints(team=request.team),
        "automations": selectors.team_automations(team=request.team),
    }
    return render(request, "console/webhooks.html", context)


@require_http_methods(["GET", "POST"])
@console_view
@sensitive_variables("secret")
def endpoint_new(request):
    if denied := _deny(request):
        return denied
    form = EndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(team=request.team, **form.service_kwargs())
        except errors.LoyaltyError as e:
            form.add_error(e.field if e.field in form.fields else None, e.message)
        else:
            # The one and only page that ever shows this secret: no redirect (no URL carries
            # it), nothing in the session or a message, and not kept by any cache.
            response = render(
                request, "console/webhooks_created.html", {"endpoint": endpoint, "secret": secret}
            )
            add_never_cache_headers(response)
            response["Referrer-Policy"] = "no-referrer"
            return response
    context = {"form": form, "require_https": services.require_https()}
    return render(request, "console/webhooks_new.html", context)


@require_safe
@console_view
def endpoint_detail(request, endpoint_id: str):
    endpoint = _team_endpoint(request, endpoint_id)
    if denied := _deny(request):
        return denied
    page = Paginator(
        selectors.endpoint_deliveries(endpoint=endpoint), DELIVERIES_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    context = {
        "endpoint": endpoint,
        "page": page,
        "max_attempts": dispatch.MAX_ATTEMPTS,
    }
    return render(request, "console/webhooks_detail.html", context)


def _set_active(request, endpoint_id: str, active: bool):
    endpoint = _team_endpoint(request, endpoint_id)
    if denied := _deny(request):
        return denied
    services.endpoint_set_active(endpoint=endpoint, active=active)
    if active:
        messages.success(request, f"Enabled {endpoint.url}. Events are sent to it again.")
    else:
        messages.success(
            request,
            f"Disabled {endpoint.url}. New events are not sent to it and pending retries wait "
            "until you enable it again.",
        )
    return redirect(_detail_url(endpoint))


@require_POST
@console_view
def endpoint_enable(request, endpoint_id: str):
    return _set_active(request, endpoint_id, True)


@require_POST
@console_view
def endpoint_disable(request, endpoint_id: str):
    return _set_active(request, endpoint_id, False)


@require_http_methods(["GET", "POST"])
@console_view
def endpoint_delete(request, endpoint_id: str):
    endpoint = _team_endpoint(request, endpoint_id)
    if denied := _deny(request):
        return denied
    if request.method == "POST":
        url = endpoint.url
        services.endpoint_delete(endpoint=endpoint)
        messages.success(request, f"Deleted {url} and its delivery log.")
        return redirect("webhooks:list")
    return render(request, "console/webhooks_delete.html", {"endpoint": endpoint})


@require_POST
@console_view
def delivery_replay(request, endpoint_id: str, delivery_id: int):
    endpoint = _team_endpoint(request, endpoint_id)
    delivery = get_object_or_404(EventDelivery, endpoint=endpoint, pk=delivery_id)
    if denied := _deny(request):
        return denied
    services.delivery_replay(delivery=delivery)
    delivery.refresh_from_db()
    what = f"{delivery.event.event_type} #{delivery.event_id}"
    if not endpoint.active:
        messages.info(request, f"Queued {what} again; it is sent once you enable the endpoint.")
    elif delivery.state == DeliveryState.SUCCEEDED:
        messages.success(request, f"Replayed {what}: delivered.")
    elif delivery.state == DeliveryState.PENDING and delivery.attempts == 0:
        messages.success(request, f"Queued {what} to be sent again.")
    else:
        messages.warning(
            request,
            f"Replayed {what}: {delivery.last_error or 'not delivered'}. It will be retried.",
        )
    return redirect(_detail_url(endpoint, request.POST.get("page")))


@require_http_methods(["GET", "POST"])
@console_view
def automations(request):
    if denied := _deny(request):
        return denied
    if request.method == "POST":
        on = set(request.POST.getlist("enabled"))
        for kind in AutomationKind.values:
            services.automation_set(team=request.team, kind=kind, enabled=kind in on)
        labels = [label for kind, label in AutomationKind.choices if kind in on]
        messages.success(
            request,
            "E-mail automations saved: " + ("; ".join(labels) if labels else "all off") + ".",
        )
        return redirect("webhooks:automations")
    context = {
        "automations": selectors.team_automations(team=request.team),
        "from_email": settings.DEFAULT_FROM_EMAIL,
    }
    return render(request, "console/webhooks_automations.html", context)
