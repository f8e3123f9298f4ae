from . import engine_jobs  # noqa
