from django.urls import path

from feedback.accounts.views import terms

from . import views

urlpatterns = [
    path("", views.rank, name="rank"),
    path("vote/", views.vote, name="rank-vote"),
    path("undo/", views.undo, name="rank-undo"),
    path("skip/", views.skip, name="rank-skip"),
    path("report/", views.report, name="rank-report"),
    path("terms/", terms, name="rank-terms"),
    path("guidelines/", views.guidelines, name="rank-guidelines"),
    path("quality/", views.quality, name="rank-quality"),
]
