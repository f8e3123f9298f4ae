"""Lab failures that are not the student's doing, and what the student is told about them.

A student reads the panel's errors on their environment page and their own job's page. An
instruction meant for a teacher or an operator ("add a cluster with load_course --cluster",
"widen FILROUGE_LABS_PORT_RANGE") is no use to them and tells them how the lab is run. So
such a failure is recorded twice: the student's words in `Environment.error` and the job's
error, the detail in `Environment.error_detail` (the teacher's grid and environment page)
and in the panel's log (operators).
"""

from django.utils.translation import gettext_lazy as _

from panel.jobs.errors import JobFailed

# Both say what happened and what the student can do, and nothing about how the lab is set up.
NOT_SET_UP = _("This exercise cannot start yet: the lab is not set up for it. Your teacher sees what is missing on the course page.")
NOT_BUILT = _("Your environment could not be built this time. Try again in a few minutes; if it keeps failing, tell your teacher (they see the details).")


class LabSetupError(JobFailed):
    """The lab is not set up to run this exercise (no cluster of its kind, no free port, an
    exercise file that cannot run): the fix belongs to a teacher or an operator.

    The message is the detail for them; `student`, when given, is what the student is told
    instead of the general NOT_SET_UP (e.g. what to send their teacher)."""

    def __init__(self, detail, student=None):
        super().__init__(detail)
        self.student = student


def student_message(exc):
    """What a student is told about a failure to build or reach their environment."""
    if isinstance(exc, LabSetupError):
        return str(exc.student or NOT_SET_UP)
    return str(NOT_BUILT)
