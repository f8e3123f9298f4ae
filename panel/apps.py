from django.apps import AppConfig


class PanelConfig(AppConfig):
    """The project itself: shared templates tags and the `runpanel` launcher command."""

    name = "panel"
    label = "panel"
