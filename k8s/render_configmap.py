"""Render k8s/trainer-configs.yaml, the `trainer-configs` ConfigMap, from the YAML files in model/configs/.

kustomize reads no file outside k8s/, so the ConfigMap is rendered here and committed, and
`kubectl apply -k k8s/` works as it is. Run it after changing a config (a test fails while it is stale):

    python k8s/render_configmap.py
"""

from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parent
CONFIGS = K8S.parent / "model" / "configs"
OUT = K8S / "trainer-configs.yaml"
HEADER = "# Rendered from model/configs/ by `python k8s/render_configmap.py`: edit those files, then rerun it.\n"


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, so the configs read as they do in model/configs/."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_BlockDumper.add_representer(str, _represent_str)


def render(configs: Path = CONFIGS) -> str:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "trainer-configs", "labels": {"app.kubernetes.io/part-of": "stock-training"}},
        "data": {path.name: path.read_text() for path in sorted(configs.glob("*.yaml"))},
    }
    return HEADER + yaml.dump(config_map, Dumper=_BlockDumper, sort_keys=False, width=1000)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
