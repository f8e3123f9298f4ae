"""Putting students into a course: by code (the student), by hand or from a CSV (the teacher).

A CSV row is `name, email[, ssh public key]` (a header line is recognised and skipped). A
known email attaches the existing user; an unknown one creates a student with a one-time
password, returned once so the teacher can hand it over; it is never stored in clear.
"""

import csv
import io
import re
import secrets
import string

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from panel.accounts.models import Role, User

from .models import Course, Enrolment

SSH_KEY_RE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/=]{40,}( [^\r\n]{0,200})?$")
MAX_CSV_ROWS = 2000


class EnrolmentError(ValueError):
    pass


def validate_ssh_key(key):
    key = (key or "").strip()
    if key and not SSH_KEY_RE.match(key):
        raise EnrolmentError(_("This is not an OpenSSH public key (it starts with ssh-ed25519, ssh-rsa or ecdsa-sha2-…)."))
    return key


def enrol_by_code(user, code):
    """The student joins the course whose code they typed; (course, created)."""
    if not getattr(user, "is_student", False):
        raise EnrolmentError(_("Only students enrol with a code."))
    course = Course.objects.filter(code__iexact=(code or "").strip()).first()
    if course is None:
        raise EnrolmentError(_("No course has this code. Check it with your teacher."))
    _enrolment, created = Enrolment.objects.get_or_create(course=course, student=user)
    return course, created


def one_time_password():
    alphabet = string.ascii_letters + string.digits
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def _free_username(email):
    base = slugify(email.split("@", 1)[0]).replace("-", ".")[:30] or "student"
    candidate, number = base, 1
    while User.objects.filter(username=candidate).exists():
        number += 1
        candidate = f"{base}{number}"
    return candidate


def enrol_person(course, name="", email="", ssh_public_key="", username=""):
    """Enrol one person; returns {user, created_user, password, enrolled}. Raises EnrolmentError."""
    key = validate_ssh_key(ssh_public_key)
    user = None
    if username:
        user = User.objects.filter(username=username.strip()).first()
        if user is None:
            raise EnrolmentError(_("No user named %(name)s.") % {"name": username})
    else:
        email = (email or "").strip()
        try:
            validate_email(email)
        except ValidationError:
            raise EnrolmentError(_("%(email)r is not an email address.") % {"email": email}) from None
        user = User.objects.filter(email__iexact=email).order_by("pk").first()
    password, created_user = "", False
    if user is None:
        first, _sep, last = (name or "").strip().partition(" ")
        password = one_time_password()
        user = User(username=_free_username(email), email=email, first_name=first[:150], last_name=last[:150], role=Role.STUDENT, must_change_password=True)
        user.set_password(password)
        user.save()
        created_user = True
    enrolment, enrolled = Enrolment.objects.get_or_create(course=course, student=user, defaults={"ssh_public_key": key})
    if key and enrolment.ssh_public_key != key:
        enrolment.ssh_public_key = key
        enrolment.save(update_fields=["ssh_public_key"])
    return {"user": user, "created_user": created_user, "password": password, "enrolled": enrolled}


def parse_csv(text):
    """[(line number, name, email, key)]; EnrolmentError naming the line of a malformed row."""
    rows = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for number, row in enumerate(reader, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and len(cells) >= 2 and cells[1].lower() in ("email", "e-mail", "mail"):
            continue
        if len(cells) < 2 or len(cells) > 3:
            raise EnrolmentError(_("Line %(line)s: expected name, email and an optional SSH public key.") % {"line": number})
        rows.append((number, cells[0], cells[1], cells[2] if len(cells) == 3 else ""))
        if len(rows) > MAX_CSV_ROWS:
            raise EnrolmentError(_("More than %(n)s rows; split the file.") % {"n": MAX_CSV_ROWS})
    return rows


def enrol_csv(course, text):
    """Enrol every row or none: [{line, name, email, user, created_user, password, enrolled}]."""
    rows = parse_csv(text)
    results = []
    with transaction.atomic():
        for number, name, email, key in rows:
            try:
                outcome = enrol_person(course, name=name, email=email, ssh_public_key=key)
            except EnrolmentError as exc:
                raise EnrolmentError(_("Line %(line)s: %(error)s") % {"line": number, "error": exc}) from None
            results.append({"line": number, "name": name, "email": email, **outcome})
    return results
