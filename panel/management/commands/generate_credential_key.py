from django.core.management.base import BaseCommand

from panel.lib.crypto import generate_key


class Command(BaseCommand):
    help = "Print a new key for FILROUGE_CREDENTIAL_KEYS (put it first to rotate, keep the old one after it)."

    def handle(self, *args, **options):
        self.stdout.write(generate_key())
