"""The exception the trainer raises for bad input: shown to the user as one line, exit status 2."""

from etl.errors import UserError


class TrainerError(UserError):
    """Bad input or environment: the message names the thing and what to do."""
