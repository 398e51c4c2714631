"""Command-line plumbing shared by `python -m etl` and `create_large_dataset.py`.

`Parser` turns argparse's usage errors into UserError, and `run` prints any UserError as one line on stderr
and exits with status 2 (130 on Ctrl-C), so no bad input ends in a traceback. The experiment scripts use
them too.
"""

import argparse
import sys

from etl.errors import UserError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def run(main, argv=None) -> int:
    try:
        return main(argv) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
