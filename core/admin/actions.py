"""Object actions: buttons on an admin change page that open a small form and call one service.

Each action names the permission it needs, takes its input (always a reason where the rule asks
for one) from a form, and calls a service with `Actor.staff(request.user)`. A ServiceError shows
on the form; nothing in the admin writes around the services.

Every form carries a one-time token (`submission`, a hidden field filled when the form is shown).
The token is claimed in its own committed row before the action runs, so the same form sent twice
(a double click, the browser's resubmit) acts once; the second submit is told what the first did.
"""

import uuid
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
from core.models import FormSubmission
from core.selectors import previous_submission
from core.services.submissions import claim_submission, finish_submission, release_submission


class ActionForm(forms.Form):
    """A form bound to the object it acts on (`self.obj`), with its one-time token."""

    submission = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, obj: Any, **kwargs: Any) -> None:
        self.obj = obj
        super().__init__(*args, **kwargs)


class ReasonForm(ActionForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


# A label, or a function of the request giving one (say, the grant limit of the one viewing).
Label = str | Callable[[HttpRequest], str]


@dataclass(frozen=True)
class ShownOnce:
    """An action's result holding a secret (a new API key): shown on the page that answers the
    form, marked not to be cached, never put in a message (messages may be stored in a cookie)."""

    message: str
    secret: str


@dataclass(frozen=True)
class ObjectAction:
    name: str
    label: Label
    form_class: type[ActionForm]
    permission: str
    # (request, obj, cleaned_data) -> the message shown to staff afterwards (or a page: ShownOnce)
    run: Callable[[HttpRequest, Any, dict[str, Any]], "str | ShownOnce"]
    applies: Callable[[Any], bool] = lambda obj: True
    message_level: int = messages.SUCCESS
    group: str = "Organization"  # the toolbar's group it is shown in

    def label_for(self, request: HttpRequest) -> str:
        return self.label if isinstance(self.label, str) else self.label(request)


@dataclass(frozen=True)
class ShownAction:
    """An action as the toolbar shows it to one viewer."""

    name: str
    label: str
    group: str
    url: str


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

    def _act_url(self, obj: Model, name: str) -> str:
        info = self.opts.app_label, self.opts.model_name
        return reverse("admin:{}_{}_act".format(*info), args=[obj.pk, name])

    def shown_object_actions(self, request: HttpRequest, obj: Model | None) -> list[ShownAction]:
        return [
            ShownAction(a.name, a.label_for(request), a.group, self._act_url(obj, a.name))
            for a in self.available_object_actions(request, obj)
            if obj is not None
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
        shown = self.shown_object_actions(request, obj)
        groups: dict[str, list[ShownAction]] = {}
        for action in shown:
            groups.setdefault(action.group, []).append(action)
        context = {**(extra_context or {}), "object_actions": shown, "action_groups": groups}
        return super().change_view(request, object_id, form_url, context)

    def _shown_once(
        self, request: HttpRequest, obj: Model, action: ObjectAction, result: ShownOnce
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "action": action,
            "action_label": action.label_for(request),
            "result": result,
            "title": f"{action.label_for(request)}: {obj}",
        }
        response = TemplateResponse(request, "admin/object_action_result.html", context)
        add_never_cache_headers(response)
        return response

    def object_action_view(self, request: HttpRequest, object_id: str, action_name: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        action = next((a for a in self.get_object_actions() if a.name == action_name), None)
        if action is None:
            raise Http404
        if not request.user.has_perm(action.permission):
            raise PermissionDenied
        if not action.applies(obj):
            # Its own first submit may be what made it no longer apply: a repeat is told what that did.
            previous = request.method == "POST" and previous_submission(
                token=request.POST.get("submission"), target=self._target(obj), user=request.user
            )
            if not previous:
                raise PermissionDenied
            self._tell_repeat(request, previous)
            return self._to_object_page(obj)
        initial = {**request.GET.dict(), "submission": uuid.uuid4()}
        form = action.form_class(request.POST if request.method == "POST" else None, obj=obj, initial=initial)
        if request.method == "POST" and form.is_valid():
            response = self._submit(request, obj, action, form)
            if response is not None:
                return response
        label = action.label_for(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "action": action,
            "action_label": label,
            "form": form,
            "title": f"{label}: {obj}",
        }
        return TemplateResponse(request, "admin/object_action.html", context)

    def _submit(
        self, request: HttpRequest, obj: Model, action: ObjectAction, form: ActionForm
    ) -> HttpResponse | None:
        """Run the action once per form token and answer (the object's page, or a page showing a
        secret once); None when the form is to be shown again with an error. A repeated submit is
        told what the first one did, and never shown its secret again."""
        data = dict(form.cleaned_data)
        claim = claim_submission(
            token=data["submission"],
            action=action.name,
            target=self._target(obj),
            user=request.user,
        )
        if not claim.first:
            self._tell_repeat(request, claim.submission)
            return self._to_object_page(obj)
        try:
            message = action.run(request, obj, data)
        except ServiceError as error:
            release_submission(submission=claim.submission)
            form.add_error(None, f"{error.message} ({error.code})")
            return None
        except Exception:
            release_submission(submission=claim.submission)
            raise
        if isinstance(message, ShownOnce):
            finish_submission(submission=claim.submission, outcome=message.message)
            return self._shown_once(request, obj, action, message)
        finish_submission(submission=claim.submission, outcome=message)
        messages.add_message(request, action.message_level, message)
        return self._to_object_page(obj)

    def _target(self, obj: Model) -> str:
        return f"{self.opts.label_lower}:{obj.pk}"

    def _tell_repeat(self, request: HttpRequest, previous: FormSubmission) -> None:
        said = f": {previous.outcome}" if previous.done_at else " and is still being processed."
        messages.warning(
            request,
            f"This form was already submitted at {previous.created_at:%Y-%m-%d %H:%M:%S} UTC; "
            f"nothing was done again. The first submit{said}",
        )

    def _to_object_page(self, obj: Model) -> HttpResponse:
        info = self.opts.app_label, self.opts.model_name
        return redirect(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
