"""Time series of what the panel observes. The small API the apps write through:

    import metrics
    metrics.record("filrouge_server_load1", 0.4, {"server": "web01"}, obj=server)
    metrics.record_many([metrics.Sample(name, value, labels, obj=...), ...])
    metrics.register_object("server", Server)   # in the app's AppConfig.ready()

Names and units are listed in metrics/names.py.
"""


def record(name, value, labels=None, obj=None, at=None):
    from .store import record as _record

    return _record(name, value, labels, obj=obj, at=at)


def record_many(samples, at=None):
    from .store import record_many as _record_many

    return _record_many(samples, at=at)


def Sample(name, value, labels=None, obj=None, object_type="", object_id=None):  # noqa: N802 - reads like the class
    from .store import Sample as _Sample

    return _Sample(name, value, labels, obj=obj, object_type=object_type, object_id=object_id)


def register_object(name, model):
    """Let series point at objects of `model` (which must have a visible_to(user) queryset)."""
    from .store import OBJECT_TYPES

    OBJECT_TYPES[name] = model
