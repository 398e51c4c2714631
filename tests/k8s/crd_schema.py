"""Validate an object against a CRD's openAPIV3Schema as the API server does with strict field validation.

`crd_errors(obj)` checks the object against the vendored PyTorchJob CRD (training operator v1.9.0): the
JSON-schema rules (types, enums, required, int-or-string) with `jsonschema`, plus the unknown-field check
that `kubectl apply --validate=strict` (fieldValidation=Strict) makes: a field that the structural schema
does not declare, outside `x-kubernetes-preserve-unknown-fields`, is an error rather than silently pruned.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jsonschema
import yaml

CRD_FILE = Path(__file__).resolve().parent / "kubeflow.org_pytorchjobs.yaml"


@cache
def pytorchjob_schema(version: str = "v1") -> dict:
    crd = yaml.safe_load(CRD_FILE.read_text())
    return next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version)


def unknown_fields(obj, schema: dict, path: str = "") -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(obj, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, value in obj.items():
            if properties is not None and key in properties:
                found += unknown_fields(value, properties[key], f"{path}.{key}")
            elif isinstance(additional, dict):
                found += unknown_fields(value, additional, f"{path}.{key}")
            elif properties is not None:
                found.append(f"{path}.{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(obj):
            found += unknown_fields(item, schema["items"], f"{path}[{index}]")
    return found


def crd_errors(obj: dict) -> list[str]:
    """Why the API server would refuse `obj` as a kubeflow.org/v1 PyTorchJob (empty when it accepts it)."""
    schema = pytorchjob_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]
    return errors + [f"unknown field {field[1:]}" for field in unknown_fields(obj, schema)]
