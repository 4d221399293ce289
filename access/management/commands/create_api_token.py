from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from access.models import DEFAULT_SCOPES, SCOPES
from access.services import TokenError, issue_token


class Command(BaseCommand):
    help = "Print a new API token for USERNAME (use it as 'Authorization: Bearer <token>'); only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--scope", action="append", metavar="SCOPE",
                            help=f"repeat or comma-separate; scopes: {', '.join(SCOPES)} "
                                 f"(default: {','.join(DEFAULT_SCOPES)})")
        parser.add_argument("--expires", default=None, metavar="WHEN",
                            help="'<days>d', '<hours>h', an ISO date, or 'never' (default: 90d)")
        parser.add_argument("--name", default="", help="what the token is for")

    def handle(self, username, scope=None, expires=None, name="", **options):
        try:
            token, row = issue_token(user=username, scopes=scope, expires=expires, name=name)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.")
        except TokenError as exc:
            raise CommandError(str(exc))
        self.stdout.write(token)
        expiry = row.expires_at.isoformat(timespec="minutes") if row.expires_at else "never"
        self.stderr.write(f"scopes: {','.join(row.scopes)}; expires: {expiry}")
