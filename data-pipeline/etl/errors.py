"""The one exception type the ETL raises for bad input: its message is shown to the user as one line."""


class EtlError(Exception):
    """Bad input or environment: the message names the thing and what to do; the CLI exits with status 2."""
