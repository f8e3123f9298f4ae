"""The API guide's examples work as written: its code fences are closed, and the script that
follows a job, run with bash and curl against a live panel and a real worker, prints every
line, stops by itself when the job has finished and exits 0 only if it succeeded."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from panel.jobs.models import FINISHED_STATUSES, Job
from tests.fixtures.actors import api_client

API_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "api-guide.md"
DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))


def fenced_blocks(text):
    """(opening line number, language, body) of each ``` block; fails on a fence left open."""
    blocks, opened, body = [], None, []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if opened is None:
                opened, body = (number, line[3:].strip()), []
            else:
                assert line.strip() == "```", f"line {number}: a fence that closes must be a bare ``` (got {line!r})"
                blocks.append((*opened, "\n".join(body)))
                opened = None
        elif opened is not None:
            body.append(line)
            assert not re.match(r"^#{1,6} [A-Z]", line) or opened[1] in ("sh", "bash", "python", "yaml"), (
                f"line {number}: the heading {line!r} is inside the code block opened at line {opened[0]}")
    assert opened is None, f"the code block opened at line {opened[0]} is never closed"
    return blocks


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_code_block_of_the_docs_is_closed(doc):
    assert fenced_blocks(doc.read_text()) or "```" not in doc.read_text()


def test_a_heading_after_an_unclosed_fence_is_caught():
    with pytest.raises(AssertionError, match="never closed|inside the code block"):
        fenced_blocks("text\n```\ncode\n## Next section\nmore\n")


def follow_script():
    text = API_GUIDE.read_text()
    section = text[text.index("Follow a job from a script"):]
    return next(body for _line, language, body in fenced_blocks(section) if language == "sh")


def run_follow(live_server, token, body=None):
    script = follow_script()
    if body is not None:
        assert "-d '{\"kind\": \"diagnostics\"}'" in script
        script = script.replace("-d '{\"kind\": \"diagnostics\"}'", f"-d '{body}'")
    env = dict(os.environ, FILROUGE=live_server.url, TOKEN=token)
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_job_following_example_prints_every_line_and_stops_when_the_job_succeeds(live_server, worker, bob):
    token = api_client(bob).plaintext
    # 2,500 lines: the events endpoint answers 1,000 at a time, so the cursor must move on.
    result = run_follow(live_server, token, '{"kind": "test-lines", "params": {"count": 2500, "pause_every": 800, "pause": 0.3}}')

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    written = [line for line in lines if line.startswith("line ")]
    assert [int(line.split()[1]) for line in written] == list(range(1, 2501))
    job = Job.objects.get(kind="test-lines")
    assert lines[-1] == f"job {job.pk}: succeeded"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_job_following_example_stops_and_exits_non_zero_when_the_job_fails(live_server, worker, bob):
    token = api_client(bob).plaintext

    result = run_follow(live_server, token, '{"kind": "test-refuser"}')

    job = Job.objects.get(kind="test-refuser")
    assert result.returncode == 1, result.stderr
    assert "the host said no" in result.stdout and result.stdout.splitlines()[-1] == f"job {job.pk}: failed"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_job_following_example_as_written_ends(live_server, worker, bob):
    token = api_client(bob).plaintext

    result = run_follow(live_server, token)

    job = Job.objects.get(kind="diagnostics")
    assert job.status in FINISHED_STATUSES
    assert result.stdout.splitlines()[-1] == f"job {job.pk}: {job.status}"
    assert result.returncode == (0 if job.status == "succeeded" else 1), result.stderr
