import secrets

from django.core.management.base import BaseCommand

from panel.accounts.models import Role, User


class Command(BaseCommand):
    help = "Create the first admin with a one-time password (printed once) unless an admin exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        if User.objects.filter(role=Role.ADMIN, is_active=True).exists():
            self.stdout.write("An admin account exists already.")
            return
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username)
        user.role = Role.ADMIN
        user.is_active = True
        user.must_change_password = True
        user.set_password(password)
        user.save()
        self.stdout.write(self.style.SUCCESS(f"Admin account: {username}   one-time password: {password}"))
        self.stdout.write("You will be asked to choose a new password at first login.")
