"""Errors that end a command with one line naming the problem (and exit status 2), never a traceback.

`UserError` is the base every part of the project raises for bad input or environment; the ETL raises
its subclass `EtlError`. `etl.cli.run` prints either as `error: <message>` and exits with status 2.
"""


class UserError(Exception):
    """Bad input or environment: the message names the thing and what to do."""


class EtlError(UserError):
    """Bad input to the ETL: a missing or malformed file, a bad option, a corrupt or missing shard."""
