import textwrap

import pytest

from labs.models import Course, Enrolment, Exercise

from . import check_types  # noqa: F401  (registers test.answer and test.explodes)

GOOD_EXERCISE = textwrap.dedent(
    """\
    slug: two-tier
    title: Two-tier app
    target: docker
    ttl: 2h
    quota: {cpu: 1.0, memory: 512Mi, ports: 2}
    start: {ports: [web, api]}
    instructions: |
      # Build it
      Publish the **web** service. <script>alert(1)</script>
    checks:
      - name: The web tier answers
        type: test.answer
        points: 2
        hint: Publish the web service on the port named `web`.
        params: {port: web, contains: notes}
      - name: Something else
        type: test.answer
        params: {contains: other}
    """
)


@pytest.fixture
def course(db, carol):
    course = Course.objects.create(title="DevOps 101", slug="devops-101", code="DEVOPS101")
    course.teachers.add(carol)
    return course


@pytest.fixture
def exercise(course):
    from labs.exercise_file import exercise_fields, parse_exercise

    return Exercise.objects.create(course=course, slug="two-tier", **exercise_fields(parse_exercise(GOOD_EXERCISE, "two-tier.yaml")))


@pytest.fixture
def enrolled(course, sam, dave):
    Enrolment.objects.create(course=course, student=sam)
    Enrolment.objects.create(course=course, student=dave)
    return course
