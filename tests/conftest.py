import pytest
from django.conf import settings
from rest_framework.test import APIClient

from billingsite import celery_app
from orgs.models import Membership, Role
from orgs.services.audit import Actor
from orgs.services.products import ensure_product, issue_api_key
from tests.factories import OrganizationFactory

OWNER = "user-owner"
MEMBER = "user-member"
OUTSIDER = "user-outsider"


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql" or not settings.REDIS_URL:
        pytest.exit(
            "The tests run on PostgreSQL and Redis: run bin/test (it finds or starts them), or set "
            "DATABASE_URL=postgres://… and REDIS_URL=redis://….",
            returncode=2,
        )


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_in_process():
    # Tests run tasks where they are enqueued; the one real-worker test turns this off.
    celery_app.conf.task_always_eager = True


@pytest.fixture
def product(db):
    return ensure_product(slug="red", name="Red")[0]


@pytest.fixture
def other_product(db):
    return ensure_product(slug="blue", name="Blue")[0]


def client_for(product) -> APIClient:
    _, key = issue_api_key(product=product, name="tests", actor=Actor.system("tests"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def api(product) -> APIClient:
    """An API client authenticated as the product `red`."""
    return client_for(product)


@pytest.fixture
def other_api(other_product) -> APIClient:
    return client_for(other_product)


@pytest.fixture
def org(db):
    """An org on the free plan (3 seats) whose owner is OWNER and with one plain MEMBER."""
    org = OrganizationFactory(owner_user_id=OWNER)
    Membership.objects.create(org=org, user_id=MEMBER, role=Role.MEMBER, joined_at=org.created_at)
    return org


@pytest.fixture
def other_org(db):
    """Another org, owned by OUTSIDER: nobody in `org` belongs to it."""
    return OrganizationFactory(owner_user_id=OUTSIDER)
