from django import forms
from django.utils.translation import gettext_lazy as _

from .exercise_file import MAX_TTL


class EnrolCodeForm(forms.Form):
    code = forms.CharField(label=_("Enrolment code"), max_length=32)


class EnrolPersonForm(forms.Form):
    username = forms.CharField(label=_("Existing username"), max_length=150, required=False)
    name = forms.CharField(label=_("Name"), max_length=300, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    ssh_public_key = forms.CharField(label=_("SSH public key"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                     help_text=_("Optional; used by SSH exercises."))

    def clean(self):
        data = super().clean()
        if not data.get("username") and not data.get("email"):
            raise forms.ValidationError(_("Give a username, or a name and an email."))
        return data


class EnrolCsvForm(forms.Form):
    csv = forms.FileField(label=_("CSV file"), required=False, help_text=_("One student a line: name, email, optional SSH public key."))
    csv_text = forms.CharField(label=_("or paste it"), required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def clean(self):
        data = super().clean()
        if not data.get("csv") and not data.get("csv_text"):
            raise forms.ValidationError(_("Choose a CSV file."))
        return data

    def text(self):
        upload = self.cleaned_data.get("csv")
        if upload:
            return upload.read().decode("utf-8-sig", errors="replace")
        return self.cleaned_data["csv_text"]


class ExerciseImportForm(forms.Form):
    file = forms.FileField(label=_("Exercise file"), help_text=_("A YAML exercise file; an exercise with the same slug is replaced."))


class ExtendForm(forms.Form):
    minutes = forms.IntegerField(label=_("Minutes"), min_value=1, max_value=int(MAX_TTL.total_seconds() // 60), initial=60)


class LoadTestForm(forms.Form):
    """A teacher's load test on one environment (labs/loadtest.py validates it again as job parameters).

    What can be loaded depends on the environment: a Docker environment's own port names, a port of
    an SSH environment's host, a Service and port of a Kubernetes environment's namespace."""

    path = forms.CharField(label=_("Path"), max_length=500, initial="/")
    method = forms.ChoiceField(label=_("Method"), choices=[("GET", "GET"), ("HEAD", "HEAD"), ("POST", "POST")], initial="GET")
    concurrency = forms.IntegerField(label=_("Concurrent clients"), min_value=1, initial=10)
    rate = forms.IntegerField(label=_("Requests per second"), min_value=1, required=False,
                              help_text=_("In all; empty: as fast as the clients go."))
    duration = forms.IntegerField(label=_("Seconds"), min_value=1, initial=30)
    expected_status = forms.IntegerField(label=_("Expected status"), min_value=100, max_value=599, initial=200)

    def __init__(self, environment, *args, **kwargs):
        from django.conf import settings

        from .loadtest import docker_ports

        kwargs.setdefault("auto_id", "loadtest_%s")
        super().__init__(*args, **kwargs)
        self.environment = environment
        target = environment.exercise.target
        if target == "docker":
            choices = [(name, f"{name} ({port})") for name, port in sorted(docker_ports(environment).items())]
            self.fields["port"] = forms.ChoiceField(label=_("Port"), choices=choices, help_text=_("One of the environment's ports, on the lab Docker host."))
        elif target == "ssh":
            self.fields["port"] = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535,
                                                     help_text=_("A port of the student's host, reached through the panel's SSH tunnel."))
        else:
            self.fields["service"] = forms.CharField(label=_("Service"), max_length=63, help_text=_("A Service of the student's namespace."))
            self.fields["port"] = forms.CharField(label=_("Port"), max_length=15, help_text=_("The Service's port: a number or its name."))
        self.order_fields(["service", "port", "path", "method", "concurrency", "rate", "duration", "expected_status"])
        self.fields["concurrency"].max_value = min(settings.LOADTEST_MAX_CONCURRENCY, settings.LABS_LOADTEST_MAX_CONCURRENCY)
        self.fields["duration"].max_value = min(settings.LOADTEST_MAX_SECONDS, settings.LABS_LOADTEST_MAX_SECONDS)
        for name in ("concurrency", "duration"):
            self.fields[name].widget.attrs["max"] = self.fields[name].max_value

    def params(self):
        data = dict(self.cleaned_data)
        data["port"] = str(data["port"])
        data["service"] = data.get("service") or ""
        data["environment"] = self.environment.pk
        return data
