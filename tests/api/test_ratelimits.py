"""Rate limits per API key: 429 rate_limited with Retry-After, per endpoint class, counted in Redis."""

import uuid

import pytest
from rest_framework.test import APIClient

from core.api.ratelimit_rules import Limit, parse_limits
from core.api.ratelimits import BATCH, Counter, counter
from orgs.models import Organization
from tests.conftest import MEMBER

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counts():
    counter.reset()
    yield
    counter.reset()


def create(api, n: int):
    body = {"name": f"Org {n}", "billing_email": "ap@x.example", "owner_user_id": f"u-{n}"}
    return api.post("/api/v1/orgs", body, format="json")


def test_past_the_write_limit_it_is_429_with_retry_after_and_writes_nothing(api, settings):
    settings.API_RATE_LIMITS = "write=3/60"
    statuses = [create(api, n).status_code for n in range(3)]
    before = Organization.objects.count()

    refused = create(api, 99)

    assert statuses == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["details"] == {"retry_after": int(refused["Retry-After"])}
    assert Organization.objects.count() == before


def test_limits_are_per_key_and_per_class(api, other_api, settings):
    settings.API_RATE_LIMITS = "write=1/60,read=100/60"
    create(api, 1)

    assert create(api, 2).status_code == 429
    assert create(other_api, 3).status_code == 201
    assert api.get("/api/v1/ping").status_code == 200


def test_the_check_counts_only_verified_keys(api, org, catalog, settings):
    settings.API_RATE_LIMITS = "check=2/60"
    body = {"org_id": org.public_id, "user_id": MEMBER, "metric": "fix_run"}
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert stranger.post("/api/v1/entitlements:check", body, format="json").status_code == 401

    answers = [api.post("/api/v1/entitlements:check", body, format="json") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"


def test_off_turns_them_off(api, settings):
    settings.API_RATE_LIMITS = "off"
    assert all(api.get("/api/v1/ping").status_code == 200 for _ in range(50))


def test_processes_share_the_count_through_redis(settings):
    """Two processes' counters (two Counter objects) add up in Redis, batch by batch."""
    settings.API_RATE_LIMITS = f"write={2 * BATCH}/60"
    first, second = Counter(), Counter()
    key = f"shared-{uuid.uuid4().hex}"  # the clock is pinned: a fresh key, not a fresh window
    for _ in range(BATCH):  # the BATCH-th request flushes (the pinned clock never reaches FLUSH_SECONDS)
        assert first.hit(key, "write") is None
    for _ in range(BATCH):
        assert second.hit(key, "write") is None

    assert second.hit(key, "write") is not None  # it read 2 × BATCH back from Redis
    # The first learns the total at its next flush: the documented overshoot, at most BATCH.
    assert first.hit(key, "write") is None


def test_the_configuration_is_checked():
    assert parse_limits("off") == {}
    assert parse_limits("check=5/1")["check"] == Limit(5, 1)
    assert parse_limits("write=7/60")["read"] == parse_limits("read=1200/60")["read"]
    for bad in ("check=5", "nope=1/60", "write=a/60", "write=1/0"):
        with pytest.raises(ValueError, match="API_RATE_LIMITS"):
            parse_limits(bad)
