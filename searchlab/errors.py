"""Errors a user can cause and fix. The CLI prints `error: <message>` and exits 2 for these."""

import re


class SearchlabError(Exception):
    """Base of every error caused by input: the message says what is wrong and how to fix it."""


class InvalidArchitecture(SearchlabError):
    """A genome breaks a rule of its search space; the message names the rule."""


class DataError(SearchlabError):
    """A data set, image or data file cannot be used; the message names the file."""


class ConfigError(SearchlabError):
    """A flag, config file or option value is wrong."""


class RunStoreError(SearchlabError):
    """A run directory or its store is missing, locked, corrupt or from another version."""


_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def in_python_terms(message: str) -> str:
    """A message written for the command line with its flags named as Python keyword arguments
    (`--max-evals` -> `max_evals`), so the Python API speaks of what its caller can pass. Commands quoted
    in backticks stay as written: they are meant for a shell."""
    parts = message.split("`")
    for i in range(0, len(parts), 2):  # the text outside backticks
        parts[i] = _FLAG.sub(lambda m: m.group(1).replace("-", "_"), parts[i])
    return "`".join(parts)
