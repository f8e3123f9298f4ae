"""Environment providers: one per target kind (docker, kubernetes, ssh), chosen through PROVIDERS."""

from django.utils.module_loading import import_string

# Target kind -> provider class, imported on first use (a kind's SDK loads only when needed).
PROVIDERS = {
    "docker": "labs.providers.docker.DockerProvider",
    "kubernetes": "labs.providers.kubernetes.KubernetesProvider",
    "ssh": "labs.providers.ssh.SSHProvider",
}


def provider_for(environment, ctx):
    return import_string(PROVIDERS[environment.exercise.target])(environment, ctx)
