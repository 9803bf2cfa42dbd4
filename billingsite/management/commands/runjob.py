import json

from django.core.management.base import BaseCommand, CommandError

from billingsite.jobs import JOBS, run_job
from core.instants import parse_instant


class Command(BaseCommand):
    help = "Run one periodic job now, in process; prints a one-line JSON summary last."

    def add_arguments(self, parser):
        parser.add_argument("job", choices=sorted(JOBS))
        parser.add_argument("--now", help="evaluate the job's time rules at this ISO-8601 instant")

    def handle(self, *args, job, now, **options):
        try:
            instant = parse_instant(now)
        except ValueError as error:
            raise CommandError(f"--now: {error}") from None
        summary = run_job(job, now=instant.isoformat() if instant else None)
        self.stdout.write(json.dumps({"job": job, **summary}, sort_keys=True, default=str))
