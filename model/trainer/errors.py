"""The one exception type the trainer raises for bad input: shown to the user as one line, exit status 2."""


class TrainerError(Exception):
    """Bad input or environment: the message names the thing and what to do."""
