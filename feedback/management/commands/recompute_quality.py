"""manage.py recompute_quality: quality control now (flags, trust, vote weights, adaptive k) and the agreement."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from feedback.datasets.agreement import agreement_report
from feedback.datasets.quality import quality_recompute


class Command(BaseCommand):
    help = "Recompute anomaly flags, volunteers' trust and vote weights; reopen low-agreement pairs."

    def add_arguments(self, parser):
        parser.add_argument("--agreement", action="store_true", help="also print Krippendorff's alpha")

    def handle(self, *args, **options):
        stats = quality_recompute()
        if options["agreement"]:
            stats["agreement"] = agreement_report()
        self.stdout.write(json.dumps(stats, indent=2, sort_keys=True))
