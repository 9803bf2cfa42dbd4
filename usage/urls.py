from django.urls import path

from usage import api

urlpatterns = [
    path("usage/events", api.UsageEventsView.as_view()),
    path("orgs/<str:org_id>/usage", api.UsageSummaryView.as_view()),
    path("holds/<str:hold_id>:commit", api.HoldCommitView.as_view()),
]
