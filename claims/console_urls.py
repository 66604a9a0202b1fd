from django.urls import path

from . import console

app_name = "claims_console"

urlpatterns = [
    path("", console.claims_overview, name="overview"),
    path("clawback/", console.clawback_now, name="clawback"),
    path("<str:public_id>/rollout/", console.rollout_change, name="rollout"),
    path("<str:public_id>/policy/", console.policy_page, name="policy"),
]
