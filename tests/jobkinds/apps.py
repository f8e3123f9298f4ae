from django.apps import AppConfig


class TestJobKindsConfig(AppConfig):
    """Job kinds that exist only in tests, to drive the job engine's edge cases on a real worker."""

    name = "tests.jobkinds"
    label = "test_jobkinds"
