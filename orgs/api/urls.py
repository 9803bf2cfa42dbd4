from django.urls import path

from orgs.api import events, views

urlpatterns = [
    path("orgs/<str:org_id>/members:upsert", views.MemberUpsertView.as_view()),
    path("orgs/<str:org_id>/members", views.MemberListView.as_view()),
    path("orgs/<str:org_id>/members/<str:user_id>", views.MemberDetailView.as_view()),
    path("orgs/<str:org_id>/invitations", views.InvitationCreateView.as_view()),
    path("invitations:accept", views.InvitationAcceptView.as_view()),
    path("ping", views.PingView.as_view()),
    path("event-endpoints", events.EndpointListView.as_view()),
    path("event-endpoints/<str:endpoint_id>:rotate-secret", events.EndpointRotateView.as_view()),
    path("event-endpoints/<str:endpoint_id>", events.EndpointDetailView.as_view()),
    path("event-deliveries", events.DeliveryListView.as_view()),
    path("event-deliveries/<str:delivery_id>:retry", events.DeliveryRetryView.as_view()),
]
