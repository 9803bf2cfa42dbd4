import pytest
from rest_framework.test import APIClient

from billing.services.catalog import load_catalog
from tests.conftest import TEST_CATALOG

pytestmark = pytest.mark.django_db


def test_it_lists_the_calling_products_prices_in_force(api, catalog):
    catalog = {"products": {"red": {**TEST_CATALOG["products"]["red"]}}}
    catalog["products"]["red"]["metrics"] = {**catalog["products"]["red"]["metrics"]}
    catalog["products"]["red"]["metrics"]["fix_run"] = {
        "unit": "run",
        "credits_per_unit": "3",
        "description": "v2",
    }
    load_catalog(catalog)

    body = api.get("/api/v1/credit-policy").json()

    assert body == {
        "product": "red",
        "metrics": [
            {"metric": "fix_run", "unit": "run", "credits_per_unit": "3.000000", "description": "v2"},
            {
                "metric": "token",
                "unit": "token",
                "credits_per_unit": "0.000003",
                "description": "One model token",
            },
        ],
        "rounding": body["rounding"],
    }
    assert "ROUND_HALF_EVEN" in body["rounding"]


def test_another_product_sees_only_its_own(other_api, catalog):
    assert [m["metric"] for m in other_api.get("/api/v1/credit-policy").json()["metrics"]] == ["build_minute"]


def test_it_needs_a_key(catalog):
    assert APIClient().get("/api/v1/credit-policy").status_code == 401
