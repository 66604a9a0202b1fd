from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("team/", views.switch_team, name="switch_team"),
    path("members/", views.members, name="members"),
    path("members/<str:public_id>/", views.member_detail, name="member"),
    path("holds/", views.holds, name="holds"),
    path("holds/<str:hold_id>/release/", views.hold_release, name="hold_release"),
    path("holds/<str:hold_id>/void/", views.hold_void, name="hold_void"),
]
