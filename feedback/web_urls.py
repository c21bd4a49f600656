from django.urls import path

from . import views

urlpatterns = [
    path("", views.rank, name="rank"),
    path("vote/", views.vote, name="rank-vote"),
    path("skip/", views.skip, name="rank-skip"),
    path("report/", views.report, name="rank-report"),
    path("terms/", views.terms, name="rank-terms"),
]
