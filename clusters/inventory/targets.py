"""From inventory rows to what the SSH engine needs: targets, variables, host-key pinning.

Only job code calls this (it decrypts credentials). Every secret it reads is handed to
`add_secret` so job lines never show it.
"""

from django.db.models import Prefetch
from django.utils import timezone

from panel.audit.models import Action
from panel.audit.recorder import record

from clusters import conf
from clusters.drivers.base import AuthFailed
from clusters.drivers.ssh import SshTarget, fingerprint
from clusters.models import Group, Server
from clusters.recipes.engine import HostSpec

MAX_JUMPS = 3


def group_ancestry():
    """{group_id: [ancestor ids, farthest first]}, and {group_id: Group} for every group (2 queries)."""
    groups = {group.pk: group for group in Group.objects.all()}
    parents = {}
    for parent_id, child_id in Group.children.through.objects.values_list("from_group_id", "to_group_id"):
        parents.setdefault(child_id, []).append(parent_id)
    ancestry = {}
    for group_id in groups:
        seen, order, stack = set(), [], [(group_id, 0)]
        depth = {}
        while stack:
            current, level = stack.pop()
            for parent in parents.get(current, []):
                if parent not in seen:
                    seen.add(parent)
                    depth[parent] = level + 1
                    stack.append((parent, level + 1))
        order = sorted(seen, key=lambda gid: (-depth[gid], groups[gid].name))
        ancestry[group_id] = order
    return ancestry, groups


def host_variables(server, ancestry, groups):
    """(variables, group names): parents' vars first, then children's, then the host's own (as Ansible)."""
    direct = [group.pk for group in server.groups.all()]
    chain = []
    for group_id in sorted(direct, key=lambda gid: groups[gid].name):
        for ancestor in ancestry.get(group_id, []):
            if ancestor not in chain:
                chain.append(ancestor)
    ordered = chain + [gid for gid in sorted(direct, key=lambda gid: groups[gid].name) if gid not in chain]
    variables = {}
    implicit_all = next((group for group in groups.values() if group.name == "all"), None)
    if implicit_all is not None:  # Ansible's `all`: every host is in it, at the lowest precedence
        variables.update(implicit_all.variables or {})
        ordered = [gid for gid in ordered if gid != implicit_all.pk]
    for group_id in ordered:
        variables.update(groups[group_id].variables or {})
    variables.update(server.variables or {})
    return variables, [groups[gid].name for gid in ordered]


def servers_for_run(ids):
    return (
        Server.objects.filter(pk__in=ids)
        .select_related("credential", "jump_host", "jump_host__credential", "jump_host__jump_host", "jump_host__jump_host__credential")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.only("pk", "name")))
        .order_by("name")
    )


def build_target(server, add_secret=lambda value: None, user=None, depth=0):
    """The SshTarget of a server (and its jump host), with pinning callbacks bound to the row."""
    if depth > MAX_JUMPS:
        raise AuthFailed(f"{server.name}: more than {MAX_JUMPS} jump hosts in a chain (or a loop); fix the jump host settings.")
    secret = {}
    credential = server.credential
    if credential is not None:
        secret = credential.get_secret()
        for value in credential.secret_values():
            add_secret(value)
    target = SshTarget(
        name=server.name, address=server.address, port=server.port, user=server.user,
        private_key=secret.get("private_key") if credential and credential.kind == "ssh-key" else None,
        passphrase=secret.get("passphrase") or None,
        password=secret.get("password") if credential and credential.kind == "password" else None,
        become_password=secret.get("become_password") or (secret.get("password") if credential and credential.kind == "password" else None),
        pinned_host_key=server.pinned_host_key,
        connect_timeout=conf.SSH_CONNECT_TIMEOUT,
        on_first_contact=_pin(server, user),
        on_key_refused=_offer(server),
    )
    if server.jump_host_id:
        target.jump = build_target(server.jump_host, add_secret, user, depth + 1)
    return target


def _pin(server, user):
    def pin(key_line):
        now = timezone.now()
        updated = Server.objects.filter(pk=server.pk, pinned_host_key="").update(
            pinned_host_key=key_line, host_key_pinned_at=now, offered_host_key="", offered_host_key_at=None
        )
        if updated:
            server.pinned_host_key = key_line
            record(Action.OTHER, server, user=user, after={"pinned_host_key": fingerprint(key_line)},
                   message=f"Pinned the host key {key_line.split()[0]} {fingerprint(key_line)} at first contact")

    return pin


def _offer(server):
    def offer(key_line):
        Server.objects.filter(pk=server.pk).update(offered_host_key=key_line, offered_host_key_at=timezone.now())

    return offer


def host_specs(servers, add_secret=lambda value: None, user=None):
    ancestry, groups = group_ancestry()
    specs = []
    for server in servers:
        variables, group_names = host_variables(server, ancestry, groups)
        if server.become:
            variables.setdefault("ansible_become", True)
        public_key = (server.credential.public or {}).get("public_key", "") if server.credential_id else ""
        specs.append(HostSpec(
            name=server.name, target=build_target(server, add_secret, user), variables=variables,
            groups=group_names, server_id=server.pk, panel_public_key=public_key,
        ))
    return specs
