from django.contrib import admin
from django.urls import include, path

from . import health, metrics, site_views
from .datasets import views as dataset_views
from .ranking import views

urlpatterns = [
    path("api/v1/", include("feedback.api.urls")),  # first: the vote path resolves in the fewest steps
    path("", views.home, name="home"),
    path("favicon.ico", site_views.favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("rank/", include("feedback.ranking.urls")),
    path("leaderboard/", include("feedback.leaderboards.urls")),
    path("me/", dataset_views.me, name="me"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "feedback.api.errors.not_found"  # JSON under /api/
