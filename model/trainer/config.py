"""The trainer's configuration: YAML sections `data`, `model`, `train`, `eval`, `io`, validated by pydantic.

`load_config(file, overrides)` reads an optional YAML file (`yaml.safe_load`), applies `section.key=value`
overrides (strings, converted to the key's type by pydantic), and returns a `Config`. Every key has a
default; an unknown key, a wrong type or an out-of-range value raises `TrainerError` naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainer.errors import TrainerError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    path: str = "data-pipeline/data/processed/gspc-volatility"
    mode: Literal["stream", "memory"] = "stream"
    checksums: bool = False


class ModelConfig(Section):
    kind: Literal["mlp", "lstm"] = "mlp"
    task: Literal["auto", "regression", "classification"] = "auto"
    hidden: int = Field(64, ge=1)
    layers: int = Field(2, ge=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class TrainConfig(Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    schedule: Literal["none", "cosine"] = "cosine"
    grad_clip: float = Field(1.0, ge=0.0)
    early_stop_patience: int = Field(5, ge=0)
    max_steps_per_epoch: int = Field(0, ge=0)
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0)
    dist_timeout: float = Field(300.0, gt=0.0)


class EvalConfig(Section):
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    batch_size: int = Field(4096, ge=1)


class IoConfig(Section):
    save_dir: str = "model/outputs"
    run_name: str = Field("default", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")


class Config(Section):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    io: IoConfig = IoConfig()

    @model_validator(mode="after")
    def lstm_needs_a_layer(self) -> Config:
        if self.model.kind == "lstm" and self.model.layers < 1:
            raise ValueError("model.layers must be at least 1 for model.kind=lstm")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.io.save_dir) / self.io.run_name


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"unknown config key {key!r}"
    if not key:
        return message
    return f"config key {key}: {message} (got {first['input']!r})"


def _read_yaml(file: Path) -> dict:
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise TrainerError(f"cannot read config {file}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise TrainerError(f"config {file}{line} is not valid YAML: fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TrainerError(f"config {file} must be a mapping of sections (data, model, train, eval, io)")
    return data


def _apply_override(data: dict, override: str) -> None:
    key, sep, value = override.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name or "." in name:
        raise TrainerError(f"--set {override!r} is not of the form section.key=value")
    if section not in Config.model_fields:
        raise TrainerError(f"unknown config key {key.strip()!r}: sections are {', '.join(Config.model_fields)}")
    target = data.setdefault(section, {})
    if not isinstance(target, dict):
        raise TrainerError(f"config key {section}: must be a mapping")
    target[name] = value


def load_config(file: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """The validated config from `file` (optional) with `section.key=value` overrides applied."""
    data = _read_yaml(Path(file)) if file is not None else {}
    for override in overrides:
        _apply_override(data, override)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise TrainerError(_describe(exc)) from None


def dump_config(config: Config) -> str:
    """The resolved config as YAML text (what `config.yaml` of a run holds)."""
    return yaml.safe_dump(config.model_dump(), sort_keys=False)
