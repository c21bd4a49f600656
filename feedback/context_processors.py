from django.conf import settings


def site(request):
    return {
        "contribution_licence": settings.CODEPREF["CONTRIBUTION_LICENCE"],
        "contribution_licence_url": settings.CODEPREF["CONTRIBUTION_LICENCE_URL"],
        "github_login_enabled": "github" in settings.SOCIALACCOUNT_PROVIDERS,
    }
