"""The course form: what a teacher sets on a course from the browser (the same fields as course.yaml)."""

import secrets
import string

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clusters.models import Cluster

from .models import Course

CODE_ALPHABET = string.ascii_uppercase + string.digits


def new_enrolment_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


class CourseForm(forms.ModelForm):
    code = forms.CharField(label=_("Enrolment code"), max_length=32, required=False,
                           help_text=_("Students enrol with it. Leave empty for a random one."))

    class Meta:
        model = Course
        fields = ["title", "slug", "description", "code", "teachers", "clusters"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3}), "teachers": forms.CheckboxSelectMultiple,
                   "clusters": forms.CheckboxSelectMultiple}
        help_texts = {"slug": _("Lowercase letters, digits and dashes; used by load_course to update the course."),
                      "clusters": _("Docker hosts (Docker and SSH exercises) and Kubernetes clusters (Kubernetes exercises).")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True).filter(Q(role="teacher") | Q(role="admin"))
        self.fields["teachers"].queryset = users.order_by("username")
        self.fields["teachers"].required = False
        self.fields["clusters"].queryset = Cluster.objects.filter(kind__in=["docker", "kubernetes"]).order_by("name")
        self.fields["clusters"].required = False

    def clean_code(self):
        code = self.cleaned_data["code"].strip() or new_enrolment_code()
        if Course.objects.filter(code__iexact=code).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another course already uses this enrolment code."))
        return code
