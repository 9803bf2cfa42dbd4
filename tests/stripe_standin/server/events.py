"""Endpoints: events."""


class EventsMixin:
    """The event endpoints, mixed into `StripeStandin` (core.py)."""

    # events

    def _get_event(self, params, id):
        return self._retrieve("event", id, params)

    def _list_events(self, params):
        type_ = params.get("type")
        return self._list("event", params, "/v1/events", lambda e: type_ is None or e["type"] == type_)
