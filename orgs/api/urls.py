from django.urls import path

from orgs.api import views

urlpatterns = [
    path("orgs/<str:org_id>/members:upsert", views.MemberUpsertView.as_view()),
    path("orgs/<str:org_id>/members", views.MemberListView.as_view()),
    path("orgs/<str:org_id>/members/<str:user_id>", views.MemberDetailView.as_view()),
    path("orgs/<str:org_id>/invitations", views.InvitationCreateView.as_view()),
    path("invitations:accept", views.InvitationAcceptView.as_view()),
    path("ping", views.PingView.as_view()),
]
