"""The form that adds a Kubernetes cluster: a kubeconfig (upload or paste) and one of its
contexts, or an API URL with a bearer token and the CA. Secret fields never show their
value back (not even after an error): the person pastes them again."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from clusters.kubernetes.cluster_input import create_kube_cluster
from clusters.models import name_validator


class SecretTextarea(forms.Textarea):
    """A textarea that never renders the submitted value (kubeconfigs hold tokens and keys)."""

    def format_value(self, value):
        return None


class KubeClusterForm(forms.Form):
    MODES = (("kubeconfig", _("A kubeconfig")), ("token", _("An API URL, a bearer token and the CA")))

    name = forms.CharField(label=_("Name"), max_length=200, validators=[name_validator])
    mode = forms.ChoiceField(label=_("How the panel reaches it"), choices=MODES, initial="kubeconfig", widget=forms.RadioSelect)
    kubeconfig_file = forms.FileField(label=_("Kubeconfig file"), required=False, help_text=_("Upload it, or paste it below."))
    kubeconfig = forms.CharField(label=_("Kubeconfig (YAML)"), required=False, strip=False,
                                 widget=SecretTextarea(attrs={"rows": 8, "autocomplete": "off", "spellcheck": "false"}))
    context = forms.CharField(label=_("Context"), required=False, max_length=200,
                              help_text=_("Which context of the kubeconfig to use; its current context when empty."))
    endpoint = forms.CharField(label=_("API URL"), required=False, max_length=500, help_text=_("e.g. https://api.example:6443"))
    token = forms.CharField(label=_("Bearer token"), required=False, strip=True, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    ca_cert = forms.CharField(label=_("CA certificate (PEM)"), required=False, widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
                              help_text=_("The cluster's CA; without it the system's trusted CAs are used."))
    allow_insecure_http = forms.BooleanField(label=_("Allow an insecure http:// API URL (local test clusters only)"), required=False)
    default_namespace = forms.CharField(label=_("Default namespace"), required=False, max_length=63,
                                        help_text=_("Where the connect test looks; the context's namespace when empty."))

    def kubeconfig_text(self):
        upload = self.cleaned_data.get("kubeconfig_file")
        if upload:
            raw = upload.read(1_000_001)
            if len(raw) > 1_000_000:
                raise ValidationError({"kubeconfig_file": _("A kubeconfig is not that large (more than 1 MB).")})
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError({"kubeconfig_file": _("The file is not UTF-8 text.")}) from None
        return self.cleaned_data.get("kubeconfig") or ""

    def save(self, user):
        """Validate everything against the input rules and save; field errors land on the form."""
        data = self.cleaned_data
        try:
            if data["mode"] == "kubeconfig":
                return create_kube_cluster(user, data["name"], kubeconfig=self.kubeconfig_text(), context=data.get("context", "").strip(),
                                           allow_insecure_http=data.get("allow_insecure_http"), default_namespace=data.get("default_namespace", "").strip())
            return create_kube_cluster(user, data["name"], endpoint=data.get("endpoint", "").strip(), token=data.get("token", ""), ca_cert=data.get("ca_cert", ""),
                                       allow_insecure_http=data.get("allow_insecure_http"), default_namespace=data.get("default_namespace", "").strip())
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                target = field if field in self.fields else None
                if field == "kubeconfig" and data.get("kubeconfig_file"):
                    target = "kubeconfig_file"
                for message in messages:
                    self.add_error(target, message)
            return None


class KubeClusterEditForm(forms.ModelForm):
    """Rename, choose another context of the stored kubeconfig, or move the token's API URL.
    The secret itself is changed on the credential's own page."""

    allow_insecure_http = forms.BooleanField(label=_("Allow an insecure http:// API URL (local test clusters only)"), required=False)

    class Meta:
        from clusters.models import Cluster

        model = Cluster
        fields = ["name", "context", "endpoint", "default_namespace"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        credential = self.instance.credential
        self.kind = credential.kind if credential else ""
        if self.kind == "kubeconfig":
            contexts = (credential.public or {}).get("contexts") or []
            self.fields["context"].widget = forms.Select(choices=[("", _("(its current context)"))] + [(name, name) for name in contexts])
            del self.fields["endpoint"]
        else:
            del self.fields["context"]
            self.fields["endpoint"].required = True

    def clean_context(self):
        context = self.cleaned_data.get("context", "")
        contexts = (self.instance.credential.public or {}).get("contexts") or []
        if context and context not in contexts:
            raise ValidationError(_("The kubeconfig has no context %(context)r; it has: %(names)s.") % {"context": context, "names": ", ".join(contexts)})
        return context

    def clean(self):
        from clusters.kubernetes.cluster_input import check_api_url

        data = super().clean()
        if self.kind != "kubeconfig" and data.get("endpoint"):
            try:
                check_api_url(data["endpoint"], data.get("allow_insecure_http"), "endpoint")
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    for message in messages:
                        self.add_error(field, message)
        return data
