from django.urls import path

from . import api_keys, views

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("team/", views.switch_team, name="switch_team"),
    path("members/", views.members, name="members"),
    path("members/<str:public_id>/", views.member_detail, name="member"),
    path("holds/", views.holds, name="holds"),
    path("holds/<str:hold_id>/release/", views.hold_release, name="hold_release"),
    path("holds/<str:hold_id>/void/", views.hold_void, name="hold_void"),
    path("unrecovered/", views.unrecovered, name="unrecovered"),
    path("settings/", views.team_settings, name="settings"),
    path("api-keys/", api_keys.api_key_list, name="api_keys"),
    path("api-keys/new/", api_keys.api_key_new, name="api_key_new"),
    path("api-keys/<str:key_id>/", api_keys.api_key_detail, name="api_key"),
    path("api-keys/<str:key_id>/rotate/", api_keys.api_key_rotate, name="api_key_rotate"),
    path("api-keys/<str:key_id>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
]
