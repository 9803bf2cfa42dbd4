"""An admin page assembled from sections that several apps contribute (the organization's page).

Each app registers its sections in its AppConfig.ready; the page orders them by their `order`
(never by INSTALLED_APPS), so an app above contributes to a page below without subclassing its admin
or unregistering it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.options import InlineModelAdmin
from django.db.models import Model, Q
from django.forms import ModelForm
from django.http import HttpRequest

from core.admin.actions import ObjectAction
from core.admin.timeline import TimelineEntry, merged
from core.registries import Slot

# A value shown on the page: a function of the object, labelled with @admin.display.
Display = Callable[[Any], Any]


@dataclass(frozen=True)
class Section:
    key: str
    order: int  # the position on the page: lower first
    inlines: tuple[type[InlineModelAdmin[Any, Any]], ...] = ()
    fields: tuple[Display, ...] = ()  # read-only values on the change page
    columns: tuple[Display, ...] = ()  # columns of the list
    select_related: tuple[str, ...] = ()  # what the list's columns read
    actions: Callable[[], Sequence[ObjectAction]] = tuple
    # Messages for staff on the list and change pages (say, data behind that the page shows).
    warnings: Callable[[HttpRequest], Sequence[str]] = field(default=lambda request: ())
    filters: tuple[Any, ...] = ()  # list filters (SimpleListFilter classes or field names)
    # The list's search: a term → a condition on the object (None: not this section's kind of term).
    search: Callable[[str], Q | None] | None = None
    # Called once with the objects of the list's page, before its columns read them (batch reads).
    prepare_rows: Callable[[Sequence[Any]], None] | None = None
    # HTML shown at the top of the change page, above the form (say, the org's status header).
    header: Callable[[HttpRequest, Any], str] | None = None
    # The object's timeline entries this app knows (its audit trail, its models' history), newest
    # first, at most `limit`: (obj, limit) -> entries.
    timeline: Callable[[Any, int], Sequence[TimelineEntry]] = field(default=lambda obj, limit: ())


@dataclass(frozen=True)
class Creation:
    """How staff create the object from the admin: the form, its fields, and the service to call."""

    form: type[ModelForm[Any]]
    fields: tuple[str, ...]
    create: Callable[[HttpRequest, dict[str, Any]], Model]


class AdminPage:
    def __init__(self, what: str) -> None:
        self.what = what
        self._sections: dict[str, Section] = {}
        self.creation: Slot[Creation] = Slot(f"the creation of {what}")

    def add(self, section: Section) -> None:
        known = self._sections.get(section.key)
        if known is not None and known != section:
            raise RuntimeError(f"Two sections {section.key!r} on {self.what}.")
        self._sections[section.key] = section

    def sections(self) -> list[Section]:
        return sorted(self._sections.values(), key=lambda s: (s.order, s.key))

    def inlines(self) -> list[type[InlineModelAdmin[Any, Any]]]:
        return [inline for section in self.sections() for inline in section.inlines]

    def fields(self) -> list[Display]:
        return [value for section in self.sections() for value in section.fields]

    def columns(self) -> list[Display]:
        return [value for section in self.sections() for value in section.columns]

    def select_related(self) -> list[str]:
        return [name for section in self.sections() for name in section.select_related]

    def actions(self) -> list[ObjectAction]:
        return [action for section in self.sections() for action in section.actions()]

    def filters(self) -> list[Any]:
        return [item for section in self.sections() for item in section.filters]

    def searches(self, term: str) -> list[Q]:
        found = (section.search(term) for section in self.sections() if section.search is not None)
        return [condition for condition in found if condition is not None]

    def prepare_rows(self, rows: Sequence[Any]) -> None:
        for section in self.sections():
            if section.prepare_rows is not None:
                section.prepare_rows(rows)

    def headers(self, request: HttpRequest, obj: Any) -> list[str]:
        return [section.header(request, obj) for section in self.sections() if section.header is not None]

    def timeline(self, obj: Any, *, limit: int) -> list[TimelineEntry]:
        return merged((section.timeline(obj, limit) for section in self.sections()), limit=limit)

    def warnings(self, request: HttpRequest) -> list[str]:
        return [text for section in self.sections() for text in section.warnings(request)]


organization_page = AdminPage("the organization's admin page")
