"""A base for the panel's own management commands: refuse to start on a database that is
not set up, with what to run, instead of a traceback from the first query."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import DatabaseError


def missing_migrations(database=DEFAULT_DB_ALIAS):
    """Names of the migrations not applied yet ("app.0003_name"), [] when up to date.
    Raises CommandError when the database cannot be reached at all."""
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[database]
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandError(f"Cannot reach the database ({reason}). Check DATABASE_URL, or start the database first.") from None
    return [f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards]


class PanelCommand(BaseCommand):
    """Runs `handle` only on a database whose tables exist and are up to date."""

    requires_migrations_checks = False  # our own check below refuses instead of warning

    def execute(self, *args, **options):
        missing = missing_migrations(options.get("database") or DEFAULT_DB_ALIAS)
        if missing:
            raise CommandError(
                f"The database is not set up yet ({len(missing)} migration(s) not applied, e.g. {missing[0]}). "
                "Run `python manage.py migrate` first (`make run` does it too), then run this command again."
            )
        return super().execute(*args, **options)
