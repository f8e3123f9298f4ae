"""What job-line redaction hides: the secret values a job was handed, not ordinary text around them."""

import base64

import pytest

from clusters.models import Credential
from panel.lib.redaction import REDACTED, Redactor

KEY_PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZE7YuFpTBfVSWqUx1sLm9EWoAoGCCqGSM49\nAwEHoUQDQgAE0bE=\n-----END EC PRIVATE KEY-----\n"
KUBECONFIG = f"""\
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: Q0EtREFUQS1PRi1USEUtQ0xVU1RFUg==
contexts:
- name: prod
  context:
    cluster: prod
    user: admin
    namespace: default
current-context: prod
users:
- name: admin
  user:
    client-certificate-data: Q0VSVElGSUNBVEUtSVMtUFVCTElD
    client-key-data: {base64.b64encode(KEY_PEM.encode()).decode()}
- name: robot
  user:
    token: robot-token-9f8e7d6c5b4a
- name: basic
  user:
    username: alice
    password: correct-horse-battery
"""


@pytest.mark.django_db
def test_a_kubeconfig_credential_hands_out_its_tokens_keys_and_passwords_only():
    credential = Credential(name="prod-kubeconfig", kind="kubeconfig")
    credential.set_secret({"kubeconfig": KUBECONFIG})
    redact = Redactor(credential.secret_values())

    shown = redact(KUBECONFIG + "\n" + KEY_PEM)

    for secret in ("robot-token-9f8e7d6c5b4a", "correct-horse-battery", base64.b64encode(KEY_PEM.encode()).decode(),
                   "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZE7YuFpTBfVSWqUx1sLm9EWoAoGCCqGSM49"):
        assert secret not in shown
    for ordinary in ("namespace: default", "current-context: prod", "server: https://10.0.0.1:6443", "kind: Config",
                     "client-certificate-data: Q0VSVElGSUNBVEUtSVMtUFVCTElD", "username: alice"):
        assert ordinary in shown
    assert shown.count(REDACTED) >= 3


def test_a_multi_line_secret_hides_its_key_lines_but_not_words_that_merely_appear_in_it():
    redact = Redactor(["line one of a config file\n" + KEY_PEM])
    text = redact("line one of a config file is fine alone; AwEHoUQDQgAE0bE= is not\n" + "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZE7YuFpTBfVSWqUx1sLm9EWoAoGCCqGSM49")
    assert text.startswith("line one of a config file is fine alone") and "MHcCAQ" not in text
