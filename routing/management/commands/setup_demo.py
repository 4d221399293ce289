import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from routing.services import ensure_router


class Command(BaseCommand):
    help = ("Prepare a demo: make sure a router is trained and an admin login exists "
            "(user COE_DEMO_USER, default 'admin'; password COE_DEMO_PASSWORD, default 'coe-demo').")

    def handle(self, **options):
        ensure_router()
        username = os.environ.get("COE_DEMO_USER", "admin")
        password = os.environ.get("COE_DEMO_PASSWORD", "coe-demo")
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Login: {username} / {password}")
