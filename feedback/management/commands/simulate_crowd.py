"""python manage.py simulate_crowd (--base-url http://127.0.0.1:8000 | --in-process) [--volunteers N]
[--profiles careful:10,noisy:20,random:2,left:2,fast:2,colluding:4] [--seed S] [--max-votes N]
[--max-seconds S] [--concurrency C] [--reading-seconds S] [--out FILE]

Simulated volunteers vote through the API on the open pairs, judging from the completions' test outcomes
with their profile's noise (feedback/crowd/). The JSON report goes to stdout (and --out), a summary to stderr.
--base-url: a running server on this machine (runserver, gunicorn) using this database; --in-process: Django's
test client here, no server. Accounts are crowd-<seed>-<profile>-<n>: a re-run with the same seed is the same
crowd and casts no vote twice. The run is bounded by --max-votes and --max-seconds (a load generator).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback.crowd.profiles import DEFAULT_MIX, PROFILES, MixError, mix_parse
from feedback.crowd.report import crowd_report, report_summary
from feedback.crowd.simulation import crowd_enlist, crowd_run, crowd_tokens_issue, crowd_tokens_revoke
from feedback.crowd.transport import HttpApi, InProcessApi, loopback_url_check

MAX_VOLUNTEERS = 10_000
MAX_SEED = 2**31 - 1


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CommandError(message)


class Command(BaseCommand):
    help = "Simulated volunteers with profiles vote through the API; reports their label accuracy."

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--base-url", dest="base_url", help="A running server on loopback: http://127.0.0.1:8000")
        where.add_argument("--in-process", dest="in_process", action="store_true", help="Django's test client here.")
        parser.add_argument("--volunteers", type=int, help="Crowd size (default: the sum of the --profiles weights).")
        parser.add_argument(
            "--profiles", default=DEFAULT_MIX, help=f"Weights of the profiles ({', '.join(PROFILES)}): {DEFAULT_MIX}"
        )
        parser.add_argument("--seed", type=int, default=0, help="Names the crowd's accounts and draws every choice.")
        parser.add_argument("--max-votes", dest="max_votes", type=int, default=10_000, help="Votes in all (bound).")
        parser.add_argument("--max-seconds", dest="max_seconds", type=float, default=600.0, help="Wall time bound.")
        parser.add_argument("--concurrency", type=int, default=1, help="Threads voting at once (--base-url only).")
        parser.add_argument(
            "--reading-seconds",
            dest="reading_seconds",
            type=float,
            default=0.0,
            help="A careful volunteer's reading time per pair (others read less; fast ones not at all).",
        )
        parser.add_argument("--out", help="Also write the JSON report to this file.")

    def handle(self, *args, **options):
        mix, volunteers, api = self._options(**options)
        members = crowd_enlist(mix=mix, volunteers=volunteers, seed=options["seed"])
        crowd_tokens_issue(members, lifetime_seconds=options["max_seconds"] + 3600)
        try:
            result = crowd_run(
                members,
                api=api,
                seed=options["seed"],
                max_votes=options["max_votes"],
                max_seconds=options["max_seconds"],
                concurrency=options["concurrency"],
                reading_seconds=options["reading_seconds"],
            )
        finally:
            api.close()
            crowd_tokens_revoke(members)
        report = crowd_report(members, result, seed=options["seed"], transport=api.name)
        text = json.dumps(report, indent=2)
        if options["out"]:
            Path(options["out"]).write_text(text + "\n")
        self.stderr.write(report_summary(report))
        self.stdout.write(text)
        if result.error:
            raise CommandError(f"the crowd stopped on an error: {result.error}")

    def _options(self, *, base_url, in_process, volunteers, profiles, seed, **options):
        try:
            mix = mix_parse(profiles)
        except MixError as exc:
            raise CommandError(f"--profiles: {exc}")
        volunteers = sum(mix.values()) if volunteers is None else volunteers
        _check(1 <= volunteers <= MAX_VOLUNTEERS, f"--volunteers must be 1 to {MAX_VOLUNTEERS}; got {volunteers}")
        _check(0 <= seed <= MAX_SEED, f"--seed must be 0 to {MAX_SEED}; got {seed}")
        _check(options["max_votes"] >= 1, f"--max-votes must be 1 or more; got {options['max_votes']}")
        _check(options["max_seconds"] > 0, f"--max-seconds must be more than 0; got {options['max_seconds']}")
        _check(1 <= options["concurrency"] <= 64, f"--concurrency must be 1 to 64; got {options['concurrency']}")
        _check(0 <= options["reading_seconds"] <= 60, "--reading-seconds must be 0 to 60")
        if in_process:
            _check(options["concurrency"] == 1, "--concurrency: --in-process runs one volunteer at a time")
            return mix, volunteers, InProcessApi()
        _check(bool(base_url), "--base-url URL of a running server (or --in-process) is required")
        try:
            return mix, volunteers, HttpApi(loopback_url_check(base_url))
        except ValueError as exc:
            raise CommandError(f"--base-url: {exc}")
