from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "panel.dashboard"
    label = "dashboard"
