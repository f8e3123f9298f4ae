"""Check types that exist only in the tests: they observe nothing remote, so the exercise
file parser and the check runner can be tested without a provider."""

from labs.checks.base import Outcome, check


@check("test.answer", schema={"port": (str, False), "status": (int, False), "contains": (str, False)})
def answer(params, target):
    expected = params.get("contains", "")
    observed = target.labels.get("answer", "")
    return Outcome(expected in observed, f"observed {observed!r}")


@check("test.explodes", schema={"message": (str, True)})
def explodes(params, target):
    raise RuntimeError(params["message"])
