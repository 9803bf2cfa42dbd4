"""dj-stripe's API-key lookups, remembered for a few minutes per process.

Syncing one invoice event, dj-stripe asks "which account owns this key?" for every object it stores
(the event, the invoice, its customer, subscription, product, each line): each time a transaction,
an APIKey get_or_create and the account row; and every `default_api_key` reads the APIKey table
again. A key belongs to one Stripe account for ever, and the key rows change only when an operator
rolls a key, so both answers are kept here for five minutes (and dropped at once when this process
saves or deletes an Account or APIKey row). Installed by billing/apps.py; a dj-stripe upgrade that
renames these methods fails the check in `install`, loudly, at start-up.
"""

import time
from collections.abc import Callable
from typing import Any

TTL_SECONDS = 300.0

_owner_accounts: dict[str, tuple[Any, float]] = {}
_default_keys: dict[tuple[int, bool | None], tuple[str, float]] = {}


def forget() -> None:
    """Drop what is remembered (a key rolled, rows deleted; the tests, between databases)."""
    _owner_accounts.clear()
    _default_keys.clear()


def _remembered(cache: dict, key: Any, compute: Callable[[], Any]) -> Any:
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    value = compute()
    if value is not None and value != "":
        cache[key] = (value, now + TTL_SECONDS)
    return value


def install() -> None:
    from django.db.models.signals import post_delete, post_save
    from djstripe.models import Account, APIKey

    lookup = Account.__dict__["get_or_retrieve_for_api_key"].__func__
    default_key = Account.__dict__["get_default_api_key"]
    if getattr(default_key, "remembered", False):
        return

    def get_or_retrieve_for_api_key(cls: type, api_key: str) -> Any:
        return _remembered(_owner_accounts, api_key, lambda: lookup(cls, api_key))

    def get_default_api_key(self: Any, livemode: bool | None = None) -> str:
        return _remembered(_default_keys, (self.pk, livemode), lambda: default_key(self, livemode))

    get_default_api_key.remembered = True  # type: ignore[attr-defined]
    Account.get_or_retrieve_for_api_key = classmethod(get_or_retrieve_for_api_key)
    Account.get_default_api_key = get_default_api_key
    for model in (Account, APIKey):
        post_save.connect(
            _forget_on_change, sender=model, dispatch_uid=f"djstripe_keys_{model.__name__}_save"
        )
        post_delete.connect(
            _forget_on_change, sender=model, dispatch_uid=f"djstripe_keys_{model.__name__}_del"
        )


def _forget_on_change(**kwargs: Any) -> None:
    forget()
