import shutil
import subprocess
from pathlib import Path

from tests.support.services import require

ROOT = Path(__file__).resolve().parents[1]


def compose_command():
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_the_production_compose_file_passes_the_compose_config_check(tmp_path):
    command = compose_command()
    require(command, "no compose tool (apt-get install docker-compose)")
    env_file = tmp_path / "env"
    env_file.write_text("POSTGRES_PASSWORD=pw\nSECRET_KEY=sk\nFILROUGE_CREDENTIAL_KEYS=ck\n")

    result = subprocess.run([*command, "-f", str(ROOT / "compose.yaml"), "--env-file", str(env_file), "config"], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    for service in ("postgres:", "redis:", "web:", "worker:", "scheduler:", "migrate:"):
        assert f"  {service}" in result.stdout
    assert "healthcheck:" in result.stdout and "postgres_data:" in result.stdout


def test_the_compose_file_refuses_to_start_without_its_secrets():
    command = compose_command()
    require(command, "no compose tool (apt-get install docker-compose)")

    result = subprocess.run([*command, "-f", str(ROOT / "compose.yaml"), "config"], capture_output=True, text=True, env={"PATH": "/usr/local/bin:/usr/bin:/bin"})

    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr
