"""The cluster form (Docker hosts and Swarms: how to reach the engine)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from clusters.models import Cluster, Credential, Server


class ClusterForm(forms.ModelForm):
    class Meta:
        model = Cluster
        fields = ["name", "kind", "endpoint", "credential", "server"]
        help_texts = {
            "endpoint": _("unix:///var/run/docker.sock, tcp://host:2376 (TLS, with a docker-tls credential), or ssh://<server name> (through an inventory server)."),
            "credential": _("docker-tls for tcp://; for ssh:// the server's own credential is used when this is empty."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(value, label) for value, label in self.fields["kind"].choices if value in ("docker", "swarm")]
        self.fields["credential"].queryset = Credential.objects.filter(kind__in=("docker-tls", "ssh-key", "password"))
        self.fields["server"].queryset = Server.objects.all()
        self.fields["endpoint"].required = False

    def clean(self):
        data = super().clean()
        endpoint = (data.get("endpoint") or "").strip() or "unix:///var/run/docker.sock"
        data["endpoint"] = endpoint
        credential, server = data.get("credential"), data.get("server")
        if endpoint.startswith("unix://"):
            if len(endpoint) <= len("unix://") or not endpoint[len("unix://"):].startswith("/"):
                self.add_error("endpoint", _("Give the socket's absolute path, e.g. unix:///var/run/docker.sock."))
        elif endpoint.startswith(("tcp://", "https://")):
            if credential is None or credential.kind != "docker-tls":
                self.add_error("credential", _("A tcp:// engine needs a docker-tls credential (CA, client certificate and key)."))
            if ":" not in endpoint.split("://", 1)[1]:
                self.add_error("endpoint", _("Give the port too, e.g. tcp://docker.example:2376."))
        elif endpoint.startswith("ssh://"):
            if server is None:
                self.add_error("server", _("An ssh:// engine is reached through an inventory server: choose it."))
            elif not server.pinned_host_key:
                self.add_error("server", _("This server has no pinned SSH host key yet; pin it first (its connect test)."))
            if credential is not None and credential.kind not in ("ssh-key", "password"):
                self.add_error("credential", _("SSH needs an ssh-key or password credential."))
        else:
            self.add_error("endpoint", _("Use unix://, tcp:// or ssh://."))
        return data
