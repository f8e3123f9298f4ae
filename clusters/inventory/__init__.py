"""The SSH inventory: servers, groups, credentials, Ansible import/export, facts and recipe runs."""
