"""Test-only job kinds. Each makes one thing happen that real kinds do only on bad days."""

import signal
import time

from rest_framework import serializers

from panel.jobs.kinds import JobKind, register


class SecondsParams(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, max_value=600, default=30)


@register
class Sleeper(JobKind):
    """Sleeps in small steps, writing a line per step: cancellable, killable, times out."""

    name = "test-sleeper"
    queue = "default"
    timeout = 600
    Params = SecondsParams

    def run(self, ctx, seconds):
        ctx.line("sleeping")
        deadline = time.monotonic() + seconds
        step = 0
        while time.monotonic() < deadline:
            step += 1
            ctx.line(f"still here ({step})", host="local")
            time.sleep(0.2)
        return {"steps": step}


@register
class ShortTimeout(Sleeper):
    name = "test-short-timeout"
    timeout = 2


@register
class Stubborn(JobKind):
    """Blocks the cancel signal and never looks at its context, like a call stuck in C code:
    only the watcher's forced stop can end it."""

    name = "test-stubborn"
    Params = SecondsParams

    def run(self, ctx, seconds):
        ctx.line("starting a loop that ignores cancel requests")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)


@register
class Broken(JobKind):
    name = "test-broken"

    def run(self, ctx):
        ctx.line("about to divide by zero")
        return 1 / 0


@register
class Refuser(JobKind):
    name = "test-refuser"

    def run(self, ctx):
        ctx.failed("the host said no", host="web01")
        ctx.fail("web01 refused the change: disk full.")


class SecretParams(serializers.Serializer):
    secret = serializers.CharField()


@register
class SecretTeller(JobKind):
    """Registers a secret and then prints it, as a careless driver might."""

    name = "test-secret-teller"
    Params = SecretParams

    def run(self, ctx, secret):
        ctx.add_secret(secret)
        ctx.line(f"connecting with password {secret}")
        ctx.line("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----")
        ctx.ok("done")


class LinesParams(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=1_000_000)
    pause_every = serializers.IntegerField(min_value=0, default=0)
    pause = serializers.FloatField(min_value=0, default=0)


@register
class LineWriter(JobKind):
    name = "test-lines"
    Params = LinesParams

    def run(self, ctx, count, pause_every, pause):
        ctx.progress(0, count)
        for number in range(1, count + 1):
            ctx.line(f"line {number} written at {time.time():.6f}", host=f"host{number % 3}")
            if pause_every and number % pause_every == 0:
                ctx.progress(number)
                time.sleep(pause)
        ctx.progress(count)


class WriterParams(serializers.Serializer):
    lines = serializers.IntegerField(min_value=1, max_value=1_000_000, default=100)
    per_second = serializers.FloatField(min_value=1, max_value=10_000, default=50)


@register
class Writer(JobKind):
    """Writes numbered lines ("line 1", "line 2"...) at a steady rate: nothing else, no database."""

    name = "test-writer"
    timeout = 600
    Params = WriterParams

    def run(self, ctx, lines, per_second):
        started = time.monotonic()
        for number in range(1, lines + 1):
            ctx.line(f"line {number}")
            delay = started + number / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return {"lines": lines}
