"""Run an exercise's checks against one environment and score them.

A check that raises counts as failed with its message: one broken check (or a student's
environment in a state nobody foresaw) never stops the others nor crashes the job.
"""

import logging

from . import load_all
from .base import CHECKS, Outcome

logger = logging.getLogger("filrouge.labs")


def run_check(check, target):
    """One check -> Outcome; never raises (except a job cancel, which is a BaseException)."""
    function = CHECKS.get(check["type"])
    if function is None:
        return Outcome(False, f"Unknown check type {check['type']!r}: the panel lacks its module.")
    try:
        outcome = function(dict(check.get("params") or {}), target)
    except Exception as exc:
        logger.info("Check %r raised %s: %s", check.get("name"), type(exc).__name__, exc)
        message = str(exc).strip()
        return Outcome(False, message if message and type(exc).__module__ != "builtins" else f"{type(exc).__name__}: {message}")
    if not isinstance(outcome, Outcome):
        return Outcome(bool(outcome), "")
    return outcome


def run_checks(checks, target, on_result=None):
    """[{name, type, passed, points, earned, detail, hint}] in order, and the score.

    `on_result(result)` is called after each check (the job writes a line per check).
    """
    load_all()
    results = []
    for check in checks:
        outcome = run_check(check, target)
        points = int(check.get("points", 1))
        result = {
            "name": check["name"],
            "type": check["type"],
            "passed": bool(outcome.passed),
            "points": points,
            "earned": points if outcome.passed else 0,
            "detail": str(outcome.detail or "")[:2000],
            "hint": check.get("hint", ""),
        }
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results, sum(result["earned"] for result in results)
