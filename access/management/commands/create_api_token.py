from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from access.services import create_api_token


class Command(BaseCommand):
    help = "Print a new API token for USERNAME (use it as 'Authorization: Bearer <token>')."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, username, **options):
        try:
            self.stdout.write(create_api_token(username))
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.")
