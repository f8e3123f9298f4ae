"""manage.py load_course: a folder becomes a course; a broken file is refused with its name and line, and nothing changes."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from clusters.models import Cluster
from labs.models import Course, Exercise

DATA = Path(__file__).parent / "data"


def load(*args):
    out = StringIO()
    call_command("load_course", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def folder(tmp_path):
    target = tmp_path / "containers"
    shutil.copytree(DATA / "course-ok", target)
    return target


def test_it_loads_a_course_with_its_exercises_teacher_and_cluster(db, folder, carol):
    Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")

    output = load(str(folder), "--teacher", "carol", "--cluster", "lab-docker")

    course = Course.objects.get(slug="containers")
    assert course.title == "Containers for beginners" and course.code == "CONTAINERS-1"
    assert list(course.teachers.all()) == [carol]
    assert [c.name for c in course.clusters.all()] == ["lab-docker"]
    assert [(e.slug, e.position, e.max_score) for e in course.exercises.order_by("position")] == [("two-tier", 0, 3), ("harden", 1, 3)]
    assert "Created course 'Containers for beginners'" in output and "two-tier" in output


def test_it_updates_the_course_in_place_when_loaded_again(db, folder):
    load(str(folder))
    first = Exercise.objects.get(slug="harden")
    (folder / "b-ssh-host.yaml").write_text((folder / "b-ssh-host.yaml").read_text().replace("title: Harden a host", "title: Harden a Debian host"))

    output = load(str(folder))

    again = Exercise.objects.get(slug="harden")
    assert again.pk == first.pk and again.title == "Harden a Debian host"
    assert Course.objects.count() == 1 and Exercise.objects.count() == 2
    assert "Updated course" in output


def test_it_refuses_a_broken_file_with_its_name_and_line_and_changes_nothing(db, folder):
    load(str(folder))
    (folder / "a-two-tier.yaml").write_text((folder / "a-two-tier.yaml").read_text().replace("title: Two-tier app", "title: Renamed"))
    (folder / "c-broken.yaml").write_text("slug: broken\ntitle: Broken\ntarget: docker\nchecks:\n  - name: x\n    type: nosuch.check\n")

    with pytest.raises(CommandError) as info:
        load(str(folder))

    assert str(info.value).startswith(f"{folder / 'c-broken.yaml'}, line 6, column 11: unknown check type 'nosuch.check'")
    assert Exercise.objects.get(slug="two-tier").title == "Two-tier app"  # the good file was not applied either
    assert not Exercise.objects.filter(slug="broken").exists()


def test_it_refuses_an_unknown_key_in_course_yaml_and_two_files_with_one_slug(db, folder):
    (folder / "course.yaml").write_text("title: X\nteacher: carol\n")
    with pytest.raises(CommandError, match=r"course.yaml, line 2, column 1: unknown key 'teacher'"):
        load(str(folder))

    (folder / "course.yaml").unlink()
    shutil.copy(folder / "a-two-tier.yaml", folder / "z-copy.yaml")
    with pytest.raises(CommandError, match=r"z-copy.yaml: slug 'two-tier' is already used by .*a-two-tier.yaml"):
        load(str(folder))
    assert not Course.objects.exists()


def test_it_refuses_an_unknown_teacher_or_cluster(db, folder):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        load(str(folder), "--teacher", "nobody")
    with pytest.raises(CommandError, match="No cluster named 'nowhere'"):
        load(str(folder), "--cluster", "nowhere")
    assert not Course.objects.exists()


def test_it_reports_every_problem_of_every_file_at_once(db, folder):
    (folder / "course.yaml").write_text("title: X\nteacher: carol\n")
    (folder / "b-syntax.yaml").write_text("slug: syntax\ntitle: [unclosed\n")
    two_tier = (folder / "a-two-tier.yaml").read_text()
    (folder / "c-two-mistakes.yaml").write_text(two_tier.replace("slug: two-tier", "slug: two-mistakes").replace("ttl: 2h", "ttl: 9d") + "colour: red\n")

    with pytest.raises(CommandError) as info:
        load(str(folder))

    lines = str(info.value).splitlines()
    assert any(line.startswith(f"{folder / 'course.yaml'}, line 2, column 1: unknown key 'teacher'") for line in lines), lines
    assert any(line.startswith(f"{folder / 'b-syntax.yaml'}, line ") and "YAML error" in line for line in lines), lines
    assert any(line.startswith(f"{folder / 'c-two-mistakes.yaml'}, line ") and "unknown key 'colour'" in line for line in lines), lines
    assert any(line.startswith(f"{folder / 'c-two-mistakes.yaml'}, line ") and "ttl 9d is longer than the 7d maximum" in line for line in lines), lines
    assert not Course.objects.exists()
