from tests.deployments.conftest import project, pushed_images  # noqa: F401 - shared fixtures of the Docker tests
