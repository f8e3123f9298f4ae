"""Host ports for lab environments: unique per Docker host, taken from settings.LABS_PORT_RANGE.

The database's unique (cluster, port) constraint is the lock: two launches racing for the
same port cannot both win; the loser tries the next free one.
"""

import random

from django.conf import settings
from django.db import IntegrityError, transaction

from .errors import LabSetupError
from .models import AllocatedPort


class NoFreePort(LabSetupError):
    """The port range is used up on that host: an operator's fix, not the student's."""


def allocate_ports(environment, cluster, names):
    """{name: port} for each name, reusing what the environment already holds on that host."""
    held = dict(environment.allocated_ports.filter(cluster=cluster).values_list("name", "port"))
    low, high = settings.LABS_PORT_RANGE
    for name in names:
        if name in held:
            continue
        taken = set(AllocatedPort.objects.filter(cluster=cluster).values_list("port", flat=True))
        candidates = [port for port in range(low, high + 1) if port not in taken]
        random.shuffle(candidates)  # racing launches rarely pick the same first candidate
        for port in candidates:
            try:
                with transaction.atomic():
                    AllocatedPort.objects.create(environment=environment, cluster=cluster, name=name, port=port)
            except IntegrityError:
                continue
            held[name] = port
            break
        else:
            raise NoFreePort(f"No free port left in {low}-{high} on {cluster}. Destroy old environments or widen FILROUGE_LABS_PORT_RANGE.")
    return {name: held[name] for name in names}


def release_ports(environment):
    environment.allocated_ports.all().delete()
