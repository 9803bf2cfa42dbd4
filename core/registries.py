"""How a lower app asks an upper one, without importing it: small registries that each upper app
fills in its AppConfig.ready. Nothing here names an app above core; no string setting stands in for
an import.

- seat_limits: the seat limit of an org's plan (orgs asks, billing answers);
- staff_permissions: what each app lets the two staff groups do (orgs/staff.py applies them);
- the sections of the organization's admin page: core/admin/sections.py.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class Slot(Generic[T]):
    """One provider of an answer, set once by the app that owns it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._provider: T | None = None

    def provide(self, provider: T) -> None:
        if self._provider is not None and self._provider != provider:
            raise RuntimeError(f"Two apps provide {self.what}.")
        self._provider = provider

    def get(self) -> T:
        if self._provider is None:
            raise LookupError(f"No installed app provides {self.what}.")
        return self._provider


# org id -> the seat limit of the org's plan; None means unlimited. billing provides it.
seat_limits: Slot[Callable[[int], int | None]] = Slot("the seat limit of an organization")


@dataclass(frozen=True)
class StaffPermissions:
    """One app's part of the staff groups: Billing admin gets every permission of `app_label`,
    Support views them and may take `support_actions` (codenames); both may view `view_only_apps`
    (apps whose data is only ever read here, such as Stripe's mirror)."""

    app_label: str
    support_actions: frozenset[str] = frozenset()
    view_only_apps: tuple[str, ...] = ()
    # "app_label.model": of a view-only app named here, Support sees these models only (Billing
    # admin sees them all): say, of Stripe's mirror, customers, subscriptions and invoices.
    support_sees_only: tuple[str, ...] = ()


class StaffPermissionRegistry:
    def __init__(self) -> None:
        self._by_app: dict[str, StaffPermissions] = {}

    def register(self, permissions: StaffPermissions) -> None:
        known = self._by_app.get(permissions.app_label)
        if known is not None and known != permissions:
            raise RuntimeError(f"Staff permissions of {permissions.app_label} registered twice.")
        self._by_app[permissions.app_label] = permissions

    def __iter__(self) -> Iterator[StaffPermissions]:
        return iter(sorted(self._by_app.values(), key=lambda p: p.app_label))


staff_permissions = StaffPermissionRegistry()
