"""Committing a hold: record its usage exactly as usage/events would, and end it, in one transaction."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.exceptions import HoldNotActive, IdempotencyConflict
from billing.models import Hold, HoldState
from billing.pricing import bounded_cost
from billing.selectors import price_book
from billing.services.holds import get_product_hold
from orgs.models import Product
from usage.models import UsageEvent, UsageEventKey
from usage.services.events import NewEvent, store_events


@dataclass(frozen=True)
class Commit:
    hold: Hold
    cost: Decimal
    hold_expired: bool


def commit_hold(
    *,
    product: Product,
    hold_id: str,
    event_id: str,
    quantity: Decimal | None = None,
    now: datetime | None = None,
) -> Commit:
    """Record the hold's usage (its quantity unless another is given) and mark it committed.

    Idempotent on event_id: the same commit again answers the same result and writes nothing. A
    hold that expired before its commit is still committed (the work was done). A released hold,
    or one committed with another event_id, raises HoldNotActive.
    """
    now = now or timezone.now()
    with transaction.atomic():
        hold = get_product_hold(product=product, hold_id=hold_id, lock=True)
        if hold.state == HoldState.COMMITTED and hold.event_id == event_id:
            key = UsageEventKey.objects.get(product_id=product.pk, event_id=event_id)
            # Through the (org, product, occurred_at) index: the one partition it is in.
            recorded = UsageEvent.objects.get(
                org_id=key.org_id, product=product, occurred_at=key.occurred_at, event_id=event_id
            )
            assert hold.ended_at is not None  # committing ended it
            return Commit(hold, recorded.cost, hold.ended_at > hold.expires_at)
        if hold.state != HoldState.ACTIVE:
            raise HoldNotActive(details={"hold_id": hold_id, "state": hold.state})
        quantity = hold.quantity if quantity is None else quantity
        metric = hold.metric.key
        price = price_book(product).version_at(metric, now)
        assert price is not None  # the hold was priced when reserved, and prices are never removed
        event = NewEvent(
            event_id=event_id,
            org_id=hold.org_id,
            metric=metric,
            price_id=price.price_id,
            quantity=quantity,
            cost=bounded_cost(quantity, price.credits_per_unit),
            occurred_at=now,
            user_id=hold.user_id,
            properties={"hold_id": hold.public_id},
        )
        ending = {hold.org_id: hold.cost} if now < hold.expires_at else {}
        if not store_events(product=product, events=[event], now=now, ending_holds=ending):
            raise IdempotencyConflict(
                "This event_id is already recorded for another usage event.", details={"event_id": event_id}
            )
        hold.state, hold.ended_at, hold.event_id = HoldState.COMMITTED, now, event_id
        hold.save(update_fields=["state", "ended_at", "event_id"])
    return Commit(hold, event.cost, now > hold.expires_at)
