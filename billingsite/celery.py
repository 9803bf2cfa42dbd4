import os

from celery import Celery

from billingsite.jobs import beat_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billingsite.settings")

app = Celery("billingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = beat_schedule()
app.autodiscover_tasks()
