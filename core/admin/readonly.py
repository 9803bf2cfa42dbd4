"""Read-only admin pieces: inlines and lists staff read, never edit (writes go through services)."""

from typing import Any, cast

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from core.display import credits_text


class LimitedInlineFormSet(BaseInlineFormSet[Any, Any, Any]):
    """Shows at most the inline's `limit` rows: an org page must stay fast for big orgs."""

    limit: int | None = None
    _limited: QuerySet[Any]

    def get_queryset(self) -> QuerySet[Any]:
        # One sliced queryset for the formset's life, as Django caches its own: a new slice per
        # call ran the inline's query once per form and count (16 times each, 217 queries a page).
        if not hasattr(self, "_limited"):
            queryset = super().get_queryset()
            self._limited = queryset[: self.limit] if self.limit else queryset
        return self._limited


class ReadOnlyInline(admin.TabularInline[Any, Any]):
    extra = 0
    can_delete = False
    show_change_link = False
    limit = 200
    formset = LimitedInlineFormSet
    template = "admin/edit_inline/tabular_readonly.html"  # Django's, without the rows' captions

    def get_formset(
        self, request: HttpRequest, obj: Model | None = None, **kwargs: Any
    ) -> type[LimitedInlineFormSet]:
        # Django builds the formset class on `self.formset`, a LimitedInlineFormSet.
        formset = cast("type[LimitedInlineFormSet]", super().get_formset(request, obj, **kwargs))
        formset.limit = self.limit
        return formset

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def credits_column(name: str, label: str = "") -> "staticmethod[[Any], str]":
    """A read-only column for an admin's class body (`amount_shown = credits_column("amount")`, then
    "amount_shown" in its fields): a credit amount or quantity as core.display writes it."""

    def show(obj: Any) -> str:
        return credits_text(getattr(obj, name))

    show.__name__ = f"{name}_shown"
    return staticmethod(admin.display(description=label or name.replace("_", " "), ordering=name)(show))
