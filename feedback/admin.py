from django.contrib import admin  # noqa: F401  (model admins are registered in feedback/admin_*.py)
