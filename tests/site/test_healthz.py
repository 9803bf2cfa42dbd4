import pytest


@pytest.mark.django_db
def test_it_reports_database_and_redis(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert (body["database"], body["redis"]) == ("ok", "ok")
    assert body["rollup"] == {
        "status": "ok",
        "lag_seconds": 0,
        "oldest_waiting_event_at": None,
        "held_by": None,
    }


@pytest.mark.django_db
def test_it_names_what_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["redis"].startswith("down")


@pytest.mark.django_db
def test_redis_is_disabled_on_the_embedded_default(client, settings):
    settings.REDIS_URL = None

    body = client.get("/healthz").json()

    assert (body["database"], body["redis"], body["rollup"]["status"]) == ("ok", "disabled", "ok")


@pytest.mark.django_db
def test_a_rollup_it_cannot_measure_is_a_detail_not_an_outage(client, monkeypatch):
    from billingsite import health

    def broken():
        raise RuntimeError("statement timeout")

    monkeypatch.setattr(health, "rollup_lag", broken)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["rollup"] == {"status": "unknown: RuntimeError"}
