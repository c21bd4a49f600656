from django.urls import path

from . import views

urlpatterns = [
    path("", views.leaderboard, name="leaderboard"),
    path("plot.png", views.plot, name="leaderboard-plot"),
    path("listing/", views.listing, name="leaderboard-listing"),
]
