"""Object actions: buttons on an admin change page that open a small form and call one service.

Each action names the permission it needs, takes its input (always a reason where the rule asks
for one) from a form, and calls a service with `Actor.staff(request.user)`. A ServiceError shows
on the form; nothing in the admin writes around the services.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers

from core.errors import ServiceError


class ActionForm(forms.Form):
    """A form bound to the object it acts on (`self.obj`)."""

    def __init__(self, *args: Any, obj: Any, **kwargs: Any) -> None:
        self.obj = obj
        super().__init__(*args, **kwargs)


class ReasonForm(ActionForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


@dataclass(frozen=True)
class ShownOnce:
    """An action's result holding a secret (a new API key): shown on the page that answers the
    form, marked not to be cached, never put in a message (messages may be stored in a cookie)."""

    message: str
    secret: str


@dataclass(frozen=True)
class ObjectAction:
    name: str
    label: str
    form_class: type[ActionForm]
    permission: str
    # (request, obj, cleaned_data) -> the message shown to staff afterwards (or a page: ShownOnce)
    run: Callable[[HttpRequest, Any, dict[str, Any]], "str | ShownOnce"]
    applies: Callable[[Any], bool] = lambda obj: True
    message_level: int = messages.SUCCESS


# The mixin goes before ModelAdmin in an admin's bases; the type checker sees ModelAdmin behind it.
if TYPE_CHECKING:
    _AdminBase = ModelAdmin[Any]
else:
    _AdminBase = object


class ObjectActionsMixin(_AdminBase):
    change_form_template = "admin/object_actions_change_form.html"

    def get_object_actions(self) -> list[ObjectAction]:
        return []

    def available_object_actions(self, request: HttpRequest, obj: Model | None) -> list[ObjectAction]:
        if obj is None:
            return []
        return [
            action
            for action in self.get_object_actions()
            if request.user.has_perm(action.permission) and action.applies(obj)
        ]

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/act/<slug:action_name>/",
                self.admin_site.admin_view(self.object_action_view),
                name="{}_{}_act".format(*info),
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {}), "object_actions": self.available_object_actions(request, obj)}
        return super().change_view(request, object_id, form_url, context)

    def _shown_once(
        self, request: HttpRequest, obj: Model, action: ObjectAction, result: ShownOnce
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "action": action,
            "result": result,
            "title": f"{action.label}: {obj}",
        }
        response = TemplateResponse(request, "admin/object_action_result.html", context)
        add_never_cache_headers(response)
        return response

    def object_action_view(self, request: HttpRequest, object_id: str, action_name: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not any(a.name == action_name for a in self.get_object_actions()):
            raise Http404
        action = next((a for a in self.available_object_actions(request, obj) if a.name == action_name), None)
        if action is None:
            raise PermissionDenied
        form = action.form_class(
            request.POST if request.method == "POST" else None, obj=obj, initial=request.GET.dict()
        )
        if request.method == "POST" and form.is_valid():
            try:
                message = action.run(request, obj, form.cleaned_data)
            except ServiceError as error:
                form.add_error(None, f"{error.message} ({error.code})")
            else:
                if isinstance(message, ShownOnce):
                    return self._shown_once(request, obj, action, message)
                messages.add_message(request, action.message_level, message)
                info = self.opts.app_label, self.opts.model_name
                return redirect(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "action": action,
            "form": form,
            "title": f"{action.label}: {obj}",
        }
        return TemplateResponse(request, "admin/object_action.html", context)
