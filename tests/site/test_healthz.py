import pytest


@pytest.mark.django_db
def test_it_reports_database_and_redis(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok"}


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

    assert client.get("/healthz").json() == {"database": "ok", "redis": "disabled"}
