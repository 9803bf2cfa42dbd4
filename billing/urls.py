from django.urls import path

from billing import api

urlpatterns = [
    path("orgs", api.OrganizationCreateView.as_view()),
    path("orgs/<str:org_id>", api.OrganizationDetailView.as_view()),
]
