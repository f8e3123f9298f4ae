import time

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from panel.jobs.kinds import JobKind, register

from . import checks

CHECKS = {
    "database": checks.check_database,
    "redis": checks.check_redis,
    "workers": checks.check_workers,
    "disk": checks.check_disk,
}


class DiagnosticsParams(serializers.Serializer):
    checks = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(CHECKS)), required=False, default=sorted(CHECKS), allow_empty=False
    )
    rounds = serializers.IntegerField(min_value=1, max_value=1000, default=1, help_text=_("How many times to run the checks."))
    interval = serializers.FloatField(min_value=0, max_value=300, default=5, help_text=_("Seconds between rounds."))


@register
class Diagnostics(JobKind):
    """Checks the panel's own database, Redis, workers and disk, one line each.

    With several rounds it watches them over time, which is also how the job engine's
    cancel, timeout and lost-worker handling is exercised on a real worker.
    """

    name = "diagnostics"
    label = _("Diagnostics")
    description = _("Check the database, Redis, the workers and the disk.")
    queue = "high"
    timeout = 3600
    Params = DiagnosticsParams

    def run(self, ctx, checks, rounds, interval):
        total = rounds * len(checks)
        done = failures = 0
        ctx.progress(0, total)
        for round_number in range(1, rounds + 1):
            for name in checks:
                outcome = CHECKS[name]()
                task = name if rounds == 1 else f"{name} (round {round_number}/{rounds})"
                if outcome["ok"]:
                    ctx.ok(outcome["detail"], host="panel", task=task)
                else:
                    failures += 1
                    ctx.failed(outcome["detail"], host="panel", task=task)
                done += 1
                ctx.progress(done, total)
            if round_number < rounds:
                time.sleep(interval)
        if failures:
            ctx.fail(f"{failures} of {total} checks failed.")
        return {"checks": total, "failures": failures}

    def describe(self, params):
        return ", ".join(params.get("checks", []))
