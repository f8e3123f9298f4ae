"""What the loader raises, and how it names a place in a file."""

from __future__ import annotations


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file, line and column of every problem."""

    def __init__(self, message, problems=None):
        super().__init__(message)
        self.problems = problems or [message]


def location(source, line, column=None):
    return f"{source}, line {line}" + (f", column {column}" if column else "")
