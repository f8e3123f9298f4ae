"""The teacher's view of a course: students × exercises, and the grades that come out of it.

One query per table (enrolments, exercises, live environments, best scores, terminal sessions), so the grid
polled every few seconds costs the same for 5 students or 200.
"""

import csv
import io

from django.db.models import Count, Max

from .models import Attempt, Environment, EnvironmentState


def build_grid(course):
    """{"exercises": [...], "rows": [{"student", "enrolment", "cells": [cell per exercise]}]}.

    A cell is {"exercise", "environment" (the newest one, or None), "best" (best score ever)}.
    """
    exercises = list(course.exercises.order_by("position", "slug"))
    enrolments = list(course.enrolments.select_related("student").order_by("student__username"))
    newest = {}
    environments = (
        Environment.objects.filter(exercise__course=course)
        .select_related("exercise")
        .order_by("exercise_id", "owner_id", "-created_at")
    )
    for environment in environments:
        newest.setdefault((environment.exercise_id, environment.owner_id), environment)
    best = best_scores(course)
    replays = terminal_session_counts(newest.values())
    rows = []
    for enrolment in enrolments:
        cells = []
        for exercise in exercises:
            key = (exercise.pk, enrolment.student_id)
            environment = newest.get(key)
            cells.append({"exercise": exercise, "environment": environment, "best": best.get(key),
                          "replays": replays.get(str(environment.pk), 0) if environment else 0})
        rows.append({"student": enrolment.student, "enrolment": enrolment, "cells": cells})
    return {"exercises": exercises, "rows": rows}


def terminal_session_counts(environments):
    """{environment id (text): number of terminal sessions opened into it}, in one query."""
    from terminals.models import TerminalSession

    ids = [str(environment.pk) for environment in environments]
    if not ids:
        return {}
    rows = TerminalSession.objects.filter(kind="lab", object_id__in=ids).values("object_id").annotate(count=Count("pk"))
    return {row["object_id"]: row["count"] for row in rows}


def best_scores(course):
    """{(exercise id, student id): best attempt score}."""
    rows = (
        Attempt.objects.filter(environment__exercise__course=course, score__isnull=False)
        .values("environment__exercise_id", "environment__owner_id")
        .annotate(best=Max("score"))
    )
    return {(row["environment__exercise_id"], row["environment__owner_id"]): row["best"] for row in rows}


def grid_as_data(course):
    """The grid as plain JSON for the API."""
    grid = build_grid(course)
    return {
        "course": course.pk,
        "exercises": [{"id": e.pk, "slug": e.slug, "title": e.title, "max_score": e.max_score} for e in grid["exercises"]],
        "rows": [
            {
                "student": {"id": row["student"].pk, "username": row["student"].username},
                "cells": [
                    {
                        "exercise": cell["exercise"].slug,
                        "environment": cell["environment"].pk if cell["environment"] else None,
                        "state": cell["environment"].state if cell["environment"] else None,
                        "score": cell["environment"].score if cell["environment"] else None,
                        "best": cell["best"],
                        "last_checked_at": cell["environment"].last_checked_at.isoformat() if cell["environment"] and cell["environment"].last_checked_at else None,
                        "expires_at": cell["environment"].expires_at.isoformat() if cell["environment"] and cell["environment"].expires_at and cell["environment"].state != EnvironmentState.DESTROYED else None,
                    }
                    for cell in row["cells"]
                ],
            }
            for row in grid["rows"]
        ],
    }


def _cell(value):
    """Spreadsheet-safe text: a cell starting with = + - @ is not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def grades_csv(course):
    """username, name, email, one column per exercise (best score), total, out of."""
    grid = build_grid(course)
    out = io.StringIO()
    writer = csv.writer(out)
    exercises = grid["exercises"]
    writer.writerow(["username", "name", "email", *[e.slug for e in exercises], "total", "out_of"])
    out_of = sum(e.max_score for e in exercises)
    for row in grid["rows"]:
        student = row["student"]
        scores = [cell["best"] for cell in row["cells"]]
        total = sum(score or 0 for score in scores)
        writer.writerow([_cell(student.username), _cell(student.get_full_name()), _cell(student.email), *["" if s is None else s for s in scores], total, out_of])
    return out.getvalue()
