"""manage.py load_course FOLDER [--teacher USERNAME] [--cluster NAME ...]: load or update a course.

Every file is validated first; a broken one is named with its line and nothing changes.
"""

from django.core.management.base import CommandError

from labs.exercise_file import ExerciseFileError
from labs.loading import CourseLoadError, load_course, setup_warnings
from panel.audit.context import acting_as
from panel.lib.commands import PanelCommand


class Command(PanelCommand):
    help = "Load or update a course from a folder of exercise files (course.yaml + one YAML file per exercise)."

    def add_arguments(self, parser):
        parser.add_argument("folder", help="The course folder, e.g. labs/starter.")
        parser.add_argument("--teacher", help="Username of a teacher to add to the course.")
        parser.add_argument("--cluster", action="append", default=[], help="Name of a cluster the course's environments run on (repeatable).")

    def handle(self, folder, teacher, cluster, **options):
        try:
            with acting_as(user=None, source="cli"):
                course, created, exercises = load_course(folder, teacher=teacher, clusters=cluster)
        except (ExerciseFileError, CourseLoadError) as exc:
            raise CommandError(str(exc)) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} course {course.title!r} (slug {course.slug}, enrolment code {course.code}) with {len(exercises)} exercise(s):")
        for exercise in exercises:
            self.stdout.write(f"  {exercise.slug}: {exercise.title} [{exercise.target}, {len(exercise.checks)} check(s), {exercise.max_score} point(s)]")
        for warning in setup_warnings(course):
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))
