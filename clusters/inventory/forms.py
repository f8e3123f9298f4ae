"""Inventory forms. Secrets are write-only: their fields start empty, and empty means "keep"."""

import json

import yaml
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from clusters import conf
from clusters.inventory.credentials import SECRET_FIELDS
from clusters.models import Credential, CredentialKind, Group, Server
from clusters.recipes import builtin_choices
from clusters.recipes.project import encode_archive
from panel.lib import safe_yaml


def parse_mapping(text, what):
    """YAML (or JSON) text → dict, with the line and column of a syntax error."""
    if not text or not text.strip():
        return {}
    try:
        value = safe_yaml.load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ValidationError(_("%(what)s: line %(line)s, column %(column)s: %(problem)s") % {
            "what": what, "line": mark.line + 1 if mark else "?", "column": mark.column + 1 if mark else "?", "problem": exc.problem}) from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{what}: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError(_("%(what)s must be a mapping (key: value lines).") % {"what": what})
    return json.loads(json.dumps(value, default=str))


def dump_mapping(value):
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True) if value else ""


def parse_labels(text):
    """"env=prod, team=web" (commas or new lines) → {"env": "prod", "team": "web"}."""
    labels = {}
    for part in (text or "").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValidationError(_("Write labels as key=value, separated by commas: %(part)r is not.") % {"part": part})
        labels[key.strip()] = value.strip()
    return labels


def build_secret(kind, values, existing=None):
    """The new secret dict for `kind` from submitted values; empty values keep the existing ones.

    Raises ValidationError with field errors (keyed by secret field name)."""
    existing = existing or {}
    secret, errors = {}, {}
    for name, label, _multiline, required in SECRET_FIELDS.get(kind, []):
        value = values.get(name)
        if value in (None, ""):
            value = existing.get(name, "")
        if isinstance(value, str) and name in ("private_key", "kubeconfig", "client_cert", "client_key", "ca_cert"):
            value = value.strip().replace("\r\n", "\n") + ("\n" if value.strip() else "")
        if required and not value:
            errors[name] = [_("%(label)s is required.") % {"label": label}]
        if value:
            secret[name] = value
    if errors:
        raise ValidationError(errors)
    from clusters.inventory.credentials import describe_public

    try:
        describe_public(kind, secret)
    except ValueError as exc:
        first = SECRET_FIELDS[kind][0][0] if SECRET_FIELDS.get(kind) else "__all__"
        raise ValidationError({first: [str(exc)]}) from None
    return secret



def text_or_upload(cleaned, default_source, empty_message):
    """A pasted text or an uploaded file (UTF-8, BOM allowed) becomes cleaned["text"], and
    cleaned["source"] names where it came from (the file's name, or `default_source`)."""
    upload = cleaned.get("upload")
    if upload:
        try:
            cleaned["text"] = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"upload": _("The file is not UTF-8 text.")}) from None
        cleaned["source"] = upload.name
    else:
        cleaned["source"] = default_source
    if not (cleaned.get("text") or "").strip():
        raise ValidationError({"text": empty_message})
    return cleaned

class CredentialForm(forms.ModelForm):
    class Meta:
        model = Credential
        fields = ["name", "username", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, kind, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        editing = self.instance.pk is not None
        for name, label, multiline, required in SECRET_FIELDS.get(kind, []):
            widget = forms.Textarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"}) if multiline else forms.PasswordInput(attrs={"autocomplete": "new-password"})
            if name == "server":
                widget = forms.TextInput()
            help_text = _lazy("Leave empty to keep the current value.") if editing else ""
            self.fields[f"secret_{name}"] = forms.CharField(label=label, required=required and not editing, widget=widget, help_text=help_text, strip=False)
        if kind not in (CredentialKind.PASSWORD, CredentialKind.REGISTRY):
            self.fields["username"].help_text = _lazy("Optional.")

    def clean(self):
        cleaned = super().clean()
        values = {key[len("secret_"):]: value for key, value in cleaned.items() if key.startswith("secret_")}
        existing = self.instance.get_secret() if self.instance.pk else None
        try:
            self.secret = build_secret(self.kind, values, existing)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                field = f"secret_{name}" if f"secret_{name}" in self.fields else None
                for message in messages:
                    self.add_error(field, message)
        return cleaned

    def save(self, commit=True):
        credential = super().save(commit=False)
        credential.kind = self.kind
        credential.set_secret(self.secret)
        if commit:
            credential.save()
        return credential


class ServerForm(forms.ModelForm):
    labels_text = forms.CharField(label=_lazy("Labels"), required=False, help_text=_lazy("key=value, separated by commas."))
    variables_text = forms.CharField(label=_lazy("Host variables (YAML)"), required=False, widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}))

    class Meta:
        model = Server
        fields = ["name", "address", "port", "user", "credential", "become", "jump_host", "groups"]
        widgets = {"groups": forms.SelectMultiple(attrs={"size": 6})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = Credential.objects.filter(kind__in=[CredentialKind.SSH_KEY, CredentialKind.PASSWORD])
        jump = Server.objects.only("pk", "name")
        if self.instance.pk:
            jump = jump.exclude(pk=self.instance.pk)
        self.fields["jump_host"].queryset = jump
        self.fields["groups"].queryset = Group.objects.only("pk", "name")
        if self.instance.pk:
            self.fields["labels_text"].initial = ", ".join(f"{key}={value}" for key, value in (self.instance.labels or {}).items())
            self.fields["variables_text"].initial = dump_mapping(self.instance.variables)

    def clean_labels_text(self):
        return parse_labels(self.cleaned_data.get("labels_text"))

    def clean_variables_text(self):
        return parse_mapping(self.cleaned_data.get("variables_text"), _("Host variables"))

    def clean_jump_host(self):
        jump = self.cleaned_data.get("jump_host")
        seen = {self.instance.pk} if self.instance.pk else set()
        current = jump
        while current is not None:
            if current.pk in seen:
                raise ValidationError(_("This jump host leads back to this server (a loop)."))
            seen.add(current.pk)
            current = current.jump_host
        return jump

    def save(self, commit=True):
        server = super().save(commit=False)
        server.labels = self.cleaned_data["labels_text"]
        server.variables = self.cleaned_data["variables_text"]
        if commit:
            server.save()
            self.save_m2m()
        return server


class GroupForm(forms.ModelForm):
    variables_text = forms.CharField(label=_lazy("Group variables (YAML)"), required=False, widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}))

    class Meta:
        model = Group
        fields = ["name", "description", "children"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2}), "children": forms.SelectMultiple(attrs={"size": 6})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        children = Group.objects.only("pk", "name")
        if self.instance.pk:
            children = children.exclude(pk=self.instance.pk)
            self.fields["variables_text"].initial = dump_mapping(self.instance.variables)
        self.fields["children"].queryset = children
        self.fields["children"].label = _lazy("Child groups")

    def clean_variables_text(self):
        return parse_mapping(self.cleaned_data.get("variables_text"), _("Group variables"))

    def clean_children(self):
        children = self.cleaned_data.get("children") or []
        if self.instance.pk:
            # A child may not be an ancestor of this group (Ansible refuses such loops too).
            ancestors, frontier = set(), {self.instance.pk}
            links = list(Group.children.through.objects.values_list("from_group_id", "to_group_id"))
            while frontier:
                frontier = {parent for parent, child in links if child in frontier} - ancestors
                ancestors |= frontier
            looping = [child.name for child in children if child.pk in ancestors]
            if looping:
                raise ValidationError(_("%(names)s already contain(s) this group; that would make a loop.") % {"names": ", ".join(looping)})
        return children

    def save(self, commit=True):
        group = super().save(commit=False)
        group.variables = self.cleaned_data["variables_text"]
        if commit:
            group.save()
            self.save_m2m()
        return group


class ImportForm(forms.Form):
    FORMATS = [("", _lazy("Guess from the content")), ("ini", "INI"), ("yaml", "YAML")]
    text = forms.CharField(label=_lazy("Inventory"), required=False, widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
                           help_text=_lazy("Paste an Ansible inventory (INI or YAML), or upload the file."))
    upload = forms.FileField(label=_lazy("or a file"), required=False)
    format = forms.ChoiceField(label=_lazy("Format"), choices=FORMATS, required=False)
    credential = forms.ModelChoiceField(label=_lazy("Credential for servers without one"), queryset=Credential.objects.none(), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = Credential.objects.filter(kind__in=[CredentialKind.SSH_KEY, CredentialKind.PASSWORD])

    def clean(self):
        return text_or_upload(super().clean(), "inventory", _("Paste an inventory or choose a file."))


class RecipeRunForm(forms.Form):
    servers = forms.ModelMultipleChoiceField(queryset=Server.objects.none(), widget=forms.MultipleHiddenInput, required=False)
    limit = forms.CharField(label=_lazy("Servers or groups"), required=False, help_text=_lazy("Names, comma-separated: web,db01,!web03."))
    recipe = forms.ChoiceField(label=_lazy("Built-in recipe"), required=False)
    playbook = forms.CharField(label=_lazy("or a recipe / playbook (YAML)"), required=False, widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}))
    project = forms.FileField(label=_lazy("or a project (.zip or .tar.gz)"), required=False,
                              help_text=_lazy("A playbook with its roles/, group_vars/, files/ and templates/."))
    playbook_file = forms.CharField(label=_lazy("Playbook in the project"), required=False, max_length=500,
                                    help_text=_lazy("Default: site.yml, playbook.yml, main.yml or the only playbook."))
    tags = forms.CharField(label=_lazy("Only tags"), required=False, max_length=2000, help_text=_lazy("Comma-separated, as --tags."))
    skip_tags = forms.CharField(label=_lazy("Skip tags"), required=False, max_length=2000, help_text=_lazy("Comma-separated, as --skip-tags."))
    variables_text = forms.CharField(label=_lazy("Extra variables (YAML)"), required=False, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
    check = forms.BooleanField(label=_lazy("Check mode: report what would change, change nothing"), required=False)
    forks = forms.IntegerField(label=_lazy("Hosts at once"), min_value=1, max_value=200, initial=20)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["servers"].queryset = Server.objects.all()
        self.fields["recipe"].choices = [("", "—")] + builtin_choices()

    def clean_variables_text(self):
        return parse_mapping(self.cleaned_data.get("variables_text"), _("Extra variables"))

    def params(self):
        data = self.cleaned_data
        return {
            "servers": [server.pk for server in data.get("servers") or []], "limit": data.get("limit") or "",
            "recipe": data.get("recipe") or "", "playbook": data.get("playbook") or "", "check": bool(data.get("check")),
            "variables": data.get("variables_text") or {}, "forks": data.get("forks") or 20,
            "project": data.get("project") or "", "playbook_file": data.get("playbook_file") or "",
            "tags": _words(data.get("tags")), "skip_tags": _words(data.get("skip_tags")),
        }

    def clean_project(self):
        upload = self.cleaned_data.get("project")
        if not upload:
            return ""
        if upload.size > conf.PROJECT_ARCHIVE_MAX_BYTES:
            raise ValidationError(_("The archive is %(size)s KiB; the limit is %(limit)s KiB.") % {
                "size": upload.size // 1024, "limit": conf.PROJECT_ARCHIVE_MAX_BYTES // 1024})
        return encode_archive(upload.read())


def _words(text):
    return [word.strip() for word in (text or "").split(",") if word.strip()]


class KnownHostsForm(forms.Form):
    text = forms.CharField(label=_lazy("known_hosts"), required=False, widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "class": "mono"}),
                           help_text=_lazy("Paste lines of an OpenSSH known_hosts file (plain or hashed host names, [host]:port), or upload it."))
    upload = forms.FileField(label=_lazy("or a file"), required=False)

    def clean(self):
        return text_or_upload(super().clean(), "known_hosts", _("Paste known_hosts lines or choose a file."))
