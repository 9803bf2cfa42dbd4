"""The organization's admin page. Its sections (members, billing, credits, usage, …) come from the
apps that own them, through core.admin.sections.organization_page, in their registered order."""

import operator
from functools import reduce
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe

from core.admin.actions import ObjectAction, ObjectActionsMixin
from core.admin.history import HistoryAdmin
from core.admin.paginators import EstimatedCountPaginator
from core.admin.sections import organization_page
from orgs.models import Membership, Organization
from orgs.services.audit import Actor
from orgs.services.organizations import update_organization

PAGE = organization_page


class OrganizationChangeList(ChangeList):
    """The org list, whose page of rows the sections read in batches (say, billing's balances)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        PAGE.prepare_rows(list(self.result_list))


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("deleted", "Soft-deleted")]

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Organization)
class OrganizationAdmin(ObjectActionsMixin, HistoryAdmin):
    # The object actions' page plus the sections' headers (the status header) above the form.
    change_form_template = "admin/orgs/organization/change_form.html"
    # Few columns: rendering a cell costs more than its query (bench/admin.py); the sections add
    # billing's plan, payment status, suspension and available balance.
    list_display = ["name", "public_id", "billing_email", "live"]
    list_filter = [LiveFilter, "personal"]
    search_fields = ["name"]  # replaced by get_search_results; keeps the search box
    search_help_text = "Name, slug, billing email, member email, org_… id or Stripe customer id (cus_…)."
    readonly_fields = ["public_id", "created_at", "updated_at", "deleted_at"]
    fields = [
        "public_id",
        "name",
        "slug",
        "billing_email",
        "personal",
        "created_at",
        "updated_at",
        "deleted_at",
    ]
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # the unfiltered list of 100,000 orgs reads the estimate
    list_per_page = 50

    @admin.display(boolean=True)
    def live(self, org):
        return org.deleted_at is None

    # --- The sections other apps contribute ------------------------------------------------------

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [*self.list_display, *PAGE.columns()]

    def get_list_select_related(self, request: HttpRequest) -> list[str]:
        return PAGE.select_related()

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [*self.list_filter, *PAGE.filters()]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return OrganizationChangeList

    def get_inlines(self, request: HttpRequest, obj: Organization | None) -> list[Any]:
        return PAGE.inlines() if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Organization | None = None) -> list[Any]:
        if obj is None:
            return list(PAGE.creation.get().fields)
        return [*self.fields, *PAGE.fields()]

    def get_readonly_fields(self, request: HttpRequest, obj: Organization | None = None) -> list[Any]:
        return [*self.readonly_fields, *PAGE.fields()] if obj is not None else []

    def get_object_actions(self) -> list[ObjectAction]:
        return PAGE.actions()

    def _warn(self, request: HttpRequest) -> None:
        for warning in PAGE.warnings(request):
            messages.warning(request, warning)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._warn(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            self._warn(request)
            org = self.get_object(request, object_id)
            if org is not None:
                headers = [mark_safe(html) for html in PAGE.headers(request, org)]  # noqa: S308 (rendered templates)
                extra_context = {**(extra_context or {}), "page_headers": headers}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- The timeline ("History") ---------------------------------------------------------------

    TIMELINE_LIMIT = 300

    def history_view(self, request, object_id, extra_context=None):
        """One timeline: the audit trail and every recorded change of the org and its rows, merged."""
        org = self.get_object(request, unquote(object_id))
        if org is None:
            raise Http404
        if not self.has_view_or_change_permission(request, org):
            raise PermissionDenied
        entries = PAGE.timeline(org, limit=self.TIMELINE_LIMIT)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": org,
            "title": f"Timeline: {org.name}",
            "entries": entries,
            "limit": self.TIMELINE_LIMIT,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/orgs/organization/timeline.html", context)

    # --- Search, creation, edits ----------------------------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Organization], search_term: str
    ) -> tuple[QuerySet[Organization], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("org_"):
            return queryset.filter(public_id=term), False
        other_ids = PAGE.searches(term)  # e.g. billing's Stripe customer ids (cus_…)
        if other_ids:
            return queryset.filter(reduce(operator.or_, other_ids)), False
        match = Q(name__icontains=term) | Q(slug=term.lower())
        if "@" in term:
            members = Membership.objects.filter(email__iexact=term).values("org_id")
            match |= Q(billing_email__iexact=term) | Q(pk__in=members)
        return queryset.filter(match), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Opened through the service the app that owns an org's creation provides (billing's
        # open_organization: the org with its account), never as a bare row.
        try:
            PAGE.creation.get()
        except LookupError:
            return False
        return request.user.has_perm("orgs.add_organization")

    def has_delete_permission(self, request, obj=None):
        return False  # never deleted: soft delete is an action with a reason

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PAGE.creation.get().form
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.pk = PAGE.creation.get().create(request, form.cleaned_data).pk  # the admin redirects to it
            return
        update_organization(
            org=obj,
            name=obj.name,
            billing_email=obj.billing_email,
            slug=obj.slug,
            personal=obj.personal,
            actor=Actor.staff(request.user),
        )
