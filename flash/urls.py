from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from channels_app import webhooks as channels_webhooks

admin.site.site_header = "Flash back office"
admin.site.site_title = "Flash"

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("admin/", admin.site.urls),
    path("webhooks/shopify", channels_webhooks.shopify, name="shopify-webhook"),
    path("api/v2/", include("loyalty.api.urls")),
    path("console/settings/online-shop/", include("channels_app.urls")),
    path("console/claims/", include("claims.console_urls")),
    path("console/webhooks/", include("events.urls")),
    path("console/", include("loyalty.console.urls")),
    path("api/", include("channels_app.api_urls")),
    path("p/<slug:team_slug>/", include("loyalty.portal.urls")),
]
