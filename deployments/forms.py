"""Service form, deploy / scale forms and the compose import form.

The spec is validated by deployments.spec.ServiceSpec (the same rules as the API and the
compose import); its errors are put back on the matching fields.
"""

import yaml
from django import forms
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError

from clusters.models import Cluster, Credential
from panel.lib import safe_yaml

from .models import Service
from .spec import normalize_spec

MAIN_FIELDS = ("image", "tag", "replicas")


class ServiceForm(forms.ModelForm):
    """Name, cluster, image, tag and replicas as fields; every other spec key as YAML."""

    image = forms.CharField(label=_("Image"), max_length=500, help_text=_("Repository, e.g. 127.0.0.1:5000/team/web"))
    tag = forms.CharField(label=_("Tag"), max_length=128, initial="latest")
    replicas = forms.IntegerField(label=_("Replicas"), min_value=0, max_value=1000, initial=1)
    spec_yaml = forms.CharField(
        label=_("More settings (YAML)"), required=False, widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "class": "mono"}),
        help_text=_("ports, env, secrets, volumes, health_check, resources, restart_policy, update, labels, command. "
                    "Example: ports: [{container: 8080, host_ip: 127.0.0.1}]"),
    )
    secrets_text = forms.CharField(
        label=_("Secret values"), required=False, widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_("NAME=value lines; stored encrypted and never shown again. Leave empty to keep the current values."),
    )

    class Meta:
        model = Service
        fields = ["name", "cluster", "project", "registry_credential"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].queryset = Cluster.objects.filter(kind__in=("docker", "swarm", "kubernetes"))
        self.fields["registry_credential"].queryset = Credential.objects.filter(kind="registry")
        spec = dict(self.instance.spec or {}) if self.instance.pk else {}
        for name in MAIN_FIELDS:
            if name in spec:
                self.fields[name].initial = spec.pop(name)
        if spec:
            self.fields["spec_yaml"].initial = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)

    def clean_spec_yaml(self):
        text = self.cleaned_data.get("spec_yaml") or ""
        try:
            data = safe_yaml.load(text) if text.strip() else {}
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise forms.ValidationError(_("Line %(line)s, column %(column)s: %(problem)s") % {"line": mark.line + 1, "column": mark.column + 1, "problem": exc.problem}) from None
        if not isinstance(data, dict):
            raise forms.ValidationError(_("Write a YAML mapping (key: value lines)."))
        return data

    def clean_secrets_text(self):
        values = {}
        for number, line in enumerate((self.cleaned_data.get("secrets_text") or "").splitlines(), start=1):
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(_("Line %(n)s: write NAME=value.") % {"n": number})
            name, value = line.split("=", 1)
            values[name.strip()] = value
        return values

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        extra = data.get("spec_yaml") or {}
        raw = {**extra, **{name: data.get(name) for name in MAIN_FIELDS}}
        try:
            data["spec"] = normalize_spec(raw)
        except ValidationError as exc:
            for name, messages in exc.detail.items():
                target = name if name in MAIN_FIELDS else "spec_yaml"
                for message in _messages(messages):
                    self.add_error(target, message if target != "spec_yaml" else f"{name}: {message}")
        return data

    def save(self, commit=True):
        service = super().save(commit=False)
        service.spec = self.cleaned_data["spec"]
        if self.cleaned_data.get("secrets_text"):
            service.set_secrets({**service.get_secrets(), **self.cleaned_data["secrets_text"]})
        if commit:
            service.save()
        return service


def _messages(detail, prefix=""):
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _messages(value, f"{prefix}{key}.")
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            yield from _messages(value, prefix if not isinstance(value, (dict, list)) else f"{prefix}{index}.")
    else:
        yield f"{prefix.rstrip('.')}: {detail}" if prefix else str(detail)


class DeployForm(forms.Form):
    tag = forms.CharField(label=_("Tag"), max_length=128, required=False, help_text=_("Leave empty to deploy the current spec."))


class ScaleForm(forms.Form):
    replicas = forms.IntegerField(label=_("Replicas"), min_value=0, max_value=1000)


class LogsForm(forms.Form):
    tail = forms.IntegerField(label=_("Last lines"), min_value=0, max_value=10000, initial=100)
    follow_seconds = forms.IntegerField(label=_("Then follow for (s)"), min_value=0, max_value=3600, initial=60)


class ComposeImportForm(forms.Form):
    cluster = forms.ModelChoiceField(label=_("Cluster"), queryset=Cluster.objects.filter(kind__in=("docker", "swarm")))
    project = forms.SlugField(label=_("Project"), max_length=63, required=False, help_text=_("Default: the file's `name:`."))
    compose_file = forms.FileField(label=_("Compose file"), required=False)
    project_archive = forms.FileField(
        label=_("…or the project folder as an archive"), required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,.tar,.tar.gz,.tgz"}),
        help_text=_(".zip or .tar.gz holding the compose file with its build contexts, .env, secret and config files."),
    )
    text = forms.CharField(label=_("…or paste it"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}))
    registry = forms.CharField(
        label=_("Registry for built images"), required=False, max_length=300,
        help_text=_("host:port/path where images built from source are pushed at deploy (needed on Swarm), e.g. 127.0.0.1:5000/team"),
    )
    registry_credential = forms.ModelChoiceField(
        label=_("Registry credential"), required=False, queryset=Credential.objects.filter(kind="registry"),
        help_text=_("Used to push and pull the images built from source."),
    )
    upload_token = forms.CharField(required=False, widget=forms.HiddenInput)
    variables = forms.CharField(
        label=_("Variables"), required=False, widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_("NAME=value lines used for ${NAME} in the file (what .env would hold)."),
    )

    def clean(self):
        data = super().clean()
        upload = data.get("compose_file")
        if data.get("project_archive") or data.get("upload_token"):
            data["filename"] = ""
            data.setdefault("text", "")
        elif upload:
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("compose_file", _("The file is not UTF-8 text."))
            data["filename"] = upload.name
        else:
            data["filename"] = "compose.yaml"
        if not (data.get("text") or "").strip() and not self.errors and not (data.get("project_archive") or data.get("upload_token")):
            self.add_error("text", _("Upload a compose file or paste it."))
        variables = {}
        for line in (data.get("variables") or "").splitlines():
            if "=" in line:
                name, value = line.split("=", 1)
                variables[name.strip()] = value
        data["variable_values"] = variables
        return data
