from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from feedback.accounts import api as tokens
from feedback.api.docs import RedocDocsView, SwaggerDocsView
from feedback.datasets import api as datasets
from feedback.leaderboards import api as leaderboards
from feedback.ranking import api as ranking

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SwaggerDocsView.as_view(), name="api-docs"),
    path("redoc/", RedocDocsView.as_view(), name="api-redoc"),
    path("token/", tokens.TokenCreateView.as_view(), name="api-token"),
    # Ranking (volunteers)
    path("pairs/next/", ranking.PairNextView.as_view(), name="api-pair-next"),
    path("pairs/<int:pair_id>/skip/", ranking.PairSkipView.as_view(), name="api-pair-skip"),
    path("votes/", ranking.VoteCreateView.as_view(), name="api-votes"),
    path("votes/<int:vote_id>/undo/", ranking.VoteUndoView.as_view(), name="api-vote-undo"),
    path("reports/", ranking.ReportCreateView.as_view(), name="api-reports"),
    # Datasets (maintainers)
    path("datasets/", datasets.DatasetListView.as_view(), name="api-datasets"),
    path("datasets/tasks/<str:task_id>/", datasets.DatasetTaskView.as_view(), name="api-dataset-task"),
    path("datasets/<int:version>/", datasets.DatasetDetailView.as_view(), name="api-dataset"),
    path("datasets/<int:version>/files/<path:name>", datasets.DatasetFileView.as_view(), name="api-dataset-file"),
    # Leaderboards (public read; opt-out for volunteers; refresh for maintainers)
    path("leaderboard/", leaderboards.LeaderboardView.as_view(), name="api-leaderboard"),
    path("leaderboard/me/", leaderboards.ListingView.as_view(), name="api-leaderboard-me"),
    path("leaderboard/refresh/", leaderboards.RefreshView.as_view(), name="api-leaderboard-refresh"),
]
