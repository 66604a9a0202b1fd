from django.urls import path

from . import api

urlpatterns = [
    path("admin/channels", api.admin_channels),
    path("admin/channels/<str:public_id>/ping", api.admin_channel_ping),
    path("shopify/connect", api.shopify_connect),
    path("shopify/status", api.shopify_status),
    path("shopify/sync", api.shopify_sync),
    path("shopify/sync/<int:sync_id>", api.shopify_sync_progress, name="api_shopify_sync_progress"),
    path("shopify/disconnect", api.shopify_disconnect),
]
