"""Schemathesis against the published schema, in process: no 5xx, no off-schema answer."""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis import checks

from flash.wsgi import application
from loyalty import api_keys, services
from loyalty.models import Member


def _published_schema():
    # The same document /api/v2/schema/ serves, generated without a request.
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = application
    return loaded


schema = _published_schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # Called as raw WSGI, Django would close the test's DB connection after each request;
    # Django's own test client disconnects the same handlers.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key(db, team_a, reward_a):
    cache.clear()
    # the id used in the schema's examples, so generated calls also reach a real member
    member = services.member_enroll(team=team_a, email="fuzz@example.com")
    Member.objects.filter(pk=member.pk).update(public_id="mem_demo00000000000000001")
    member.refresh_from_db()
    services.points_award(member=member, key="order:S-0", source="api", amount="500.00")
    services.reward_redeem(member=member, reward=reward_a)
    _, key = api_keys.api_key_create(
        team=team_a, name="fuzz", scopes=list(api_keys.SCOPES), rate_limit=1_000_000
    )
    return key


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_never_errors_and_keeps_to_its_schema(case, fuzz_key):
    # Every default check except negative_data_rejection: it would count a request whose
    # Authorization header it dropped as "accepted", while this test always sends the key.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_key}"},
        excluded_checks=[checks.negative_data_rejection],
    )
