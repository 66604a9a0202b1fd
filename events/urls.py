from django.urls import path

from . import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("new/", views.endpoint_new, name="new"),
    path("automations/", views.automations, name="automations"),
    path("<str:endpoint_id>/", views.endpoint_detail, name="detail"),
    path("<str:endpoint_id>/enable/", views.endpoint_enable, name="enable"),
    path("<str:endpoint_id>/disable/", views.endpoint_disable, name="disable"),
    path("<str:endpoint_id>/delete/", views.endpoint_delete, name="delete"),
    path(
        "<str:endpoint_id>/deliveries/<int:delivery_id>/replay/",
        views.delivery_replay,
        name="replay",
    ),
]
