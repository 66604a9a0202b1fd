from django.urls import path

from . import views

app_name = "channels"

urlpatterns = [
    path("", views.online_shop, name="online_shop"),
    path("<str:kind>/save/", views.save, name="save"),
    path("<str:public_id>/ping/", views.ping, name="ping"),
    path("<str:public_id>/sync/", views.sync, name="sync"),
    path("<str:public_id>/disconnect/", views.disconnect, name="disconnect"),
]
