"""The hyperparameter search space shared by the local search, the cloud search and the Katib render.

A space file (YAML) names a base trainer config, the epochs per trial, the objective, and for each
`section.key` a list of values. `trials()` expands it: `grid` is every combination in a fixed order;
`random` draws `count` distinct combinations with a seed. A trial is a dict of `section.key` overrides,
passed to the trainer as `--set section.key=value`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from etl.errors import UserError

STRATEGIES = ("grid", "random")


class SearchSpaceError(UserError):
    """A search-space file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    base_config: Path
    epochs: int
    objective: str
    parameters: dict[str, list]

    def grid(self) -> list[dict]:
        names = list(self.parameters)
        return [dict(zip(names, values, strict=True)) for values in itertools.product(*self.parameters.values())]

    def trials(self, strategy: str = "grid", count: int | None = None, seed: int = 0) -> list[dict]:
        """The overrides of each trial (epochs included), in the order they run."""
        if strategy not in STRATEGIES:
            raise SearchSpaceError(f"--strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
        combos = self.grid()
        if strategy == "random":
            if not count or count < 1:
                raise SearchSpaceError("--strategy random needs --trials N with N >= 1")
            combos = random.Random(seed).sample(combos, min(count, len(combos)))
        elif count:
            combos = combos[:count]
        return [{**combo, "train.epochs": self.epochs} for combo in combos]


def overrides_as_args(overrides: dict) -> list[str]:
    """`--set k=v` arguments for the trainer's command line."""
    args = []
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    return args


def read_yaml(path: Path, what: str):
    """The YAML document at `path` (`yaml.safe_load`); UserError naming `what` when missing or malformed."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{what} {path} is not valid YAML ({str(exc).splitlines()[0]})") from None


def load_search_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    spec = read_yaml(path, "search space")
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"search space {path} must be a mapping")
    unknown = set(spec) - {"base_config", "epochs", "objective", "parameters"}
    if unknown:
        raise SearchSpaceError(f"search space {path}: unknown key(s) {', '.join(sorted(unknown))}")
    parameters = spec.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise SearchSpaceError(f"search space {path}: `parameters` must map section.key to a list of values")
    for name, values in parameters.items():
        if "." not in str(name) or not isinstance(values, list) or not values:
            raise SearchSpaceError(f"search space {path}: parameter {name!r} must be section.key: [values, ...]")
    epochs = spec.get("epochs", 20)
    if not isinstance(epochs, int) or epochs < 1:
        raise SearchSpaceError(f"search space {path}: epochs must be a whole number >= 1")
    base = path.parent / spec.get("base_config", "search_base.yaml")
    return SearchSpace(path, base, epochs, spec.get("objective", "val_loss"), parameters)
