"""Mounted at /p/<team_slug>/ by flash/urls.py; every view receives the team slug."""

from django.urls import include, path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("enroll/", views.enroll, name="enroll"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("history/", views.history, name="history"),
    path("card/", views.card, name="card"),
    path("rewards/", views.rewards, name="rewards"),
    path("rewards/redeem/", views.redeem, name="redeem"),
    path("coupons/", views.coupons, name="coupons"),
    path("claims/", include("claims.urls")),
]
