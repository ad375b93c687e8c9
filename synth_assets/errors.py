"""Errors a user can act on.

Every failure that reaches the command line is a ``ProdtwinError``: one message that names the
table, column or setting at fault and what to do about it. Anything else is a bug.
"""

from __future__ import annotations


class ProdtwinError(Exception):
    """A failure with a message meant for the person running prodtwin."""


class ConfigError(ProdtwinError):
    """prodtwin.yaml is missing, malformed, or refers to something that does not exist."""


class SchemaError(ProdtwinError):
    """The source schema has a shape prodtwin cannot reproduce (e.g. an unbreakable FK cycle)."""


class TransientError(ProdtwinError):
    """A failure that may pass if tried again: a server restarting, a dropped connection.

    The engine retries these with backoff before giving up; an orchestrator may retry them too
    (every other ProdtwinError is a verdict on the input, and retrying it changes nothing).
    """


class PublishError(ProdtwinError):
    """Publishing to a warehouse failed; the previous warehouse is left as it was."""
