"""Portal pages for order claims (mounted under /p/<team_slug>/claims/ by the portal)."""

from django.contrib import messages
from django.shortcuts import redirect, render

from loyalty.errors import LoyaltyError
from loyalty.portal.auth import portal_view

from . import services
from .models import Claim


@portal_view
def claims(request):
    member = request.member
    values = {"channel": "", "order_number": "", "postal_code": ""}
    error = None
    status = 200
    if request.method == "POST":
        values = {name: request.POST.get(name, "")[:200] for name in values}
        try:
            claim = services.claim_submit(
                member=member,
                channel_public_id=values["channel"],
                order_number=values["order_number"],
                postal_code=values["postal_code"],
            )
        except LoyaltyError as exc:
            error, status = exc, 400
        else:
            messages.success(
                request,
                f"Thanks! We are checking order {claim.order_number} "
                f"with {claim.channel.get_kind_display()}.",
            )
            return redirect("portal:claims:claims", team_slug=request.team.slug)
    rows = [
        (c, services.status_words(c))
        for c in Claim.objects.filter(member=member).select_related("channel")[:50]
    ]
    context = {
        "channels": services.claim_channels(member),
        "values": values,
        "error": error,
        "rows": rows,
    }
    return render(request, "claims/claims.html", context, status=status)
