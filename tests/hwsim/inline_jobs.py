"""A fixture for the hwsim app tests: coe_site.jobs runs every job inline, in this process, in either settings mode
(no broker, no background thread), and a delayed job (a twin's next tick) is not run: tests drive ticks."""
import pytest


@pytest.fixture
def inline_jobs(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.COE_JOBS_IN_BACKGROUND = False
