from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "panel.health"
    label = "health"
