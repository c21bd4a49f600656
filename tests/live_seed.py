"""Seed a drill stack's database: ``python -m tests.live_seed`` with ``DATABASE_URL`` set.

Migrates, loads ``LIVE_SEED_PAIRS`` pairs (default 400) with COPY (``bench/vote_path.py``'s loader), makes
``LIVE_SEED_VOLUNTEERS`` volunteers (default 8, terms accepted) and one maintainer, each with an API token,
and prints them as one JSON line: ``{"volunteers": [[user_id, token], ...], "maintainer": token, "pairs": n}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback.settings")
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from knox.models import AuthToken
    from vote_path import load

    call_command("migrate", verbosity=0, interactive=False)
    data = load(int(os.environ.get("LIVE_SEED_PAIRS", "400")), int(os.environ.get("LIVE_SEED_VOLUNTEERS", "8")), 0)
    maintainer = get_user_model().objects.create_user("drill-maintainer", password="!")
    maintainer.groups.add(Group.objects.get_or_create(name="maintainer")[0])
    token = AuthToken.objects.create(maintainer)[1]
    print(json.dumps({"volunteers": data["api"], "maintainer": token, "pairs": data["pairs"]}))


if __name__ == "__main__":
    main()
