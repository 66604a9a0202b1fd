"""Included by loyalty/portal/urls.py at claims/ (so under /p/<team_slug>/claims/)."""

from django.urls import path

from . import views

app_name = "claims"

urlpatterns = [
    path("", views.claims, name="claims"),
]
