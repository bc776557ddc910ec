"""What a kubelet would do with a rendered Deployment, done here: the shim ConfigMap laid
out as the pod's volume, and the model container's command, env and probes read back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from modelport.export.kubernetes import SHIM_MOUNT


def load_dir(out: Path) -> list[dict[str, Any]]:
    return [d for f in sorted(out.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
            if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def shim_volume(docs: list[dict[str, Any]], deployment: dict[str, Any], dest: Path) -> Path:
    """The ``shim`` volume of ``deployment``'s pod, written as the kubelet projects it."""
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "shim"]
    cm = by_kind(docs, "ConfigMap")[volume["configMap"]["name"]]
    for item in volume["configMap"]["items"]:
        target = dest / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(cm["data"][item["key"]])
    return dest


def model_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def validate(out: Path) -> subprocess.CompletedProcess[str]:
    """``kubernetes-validate --strict`` (the official schemas) over every file in ``out``."""
    tool = Path(sys.executable).with_name("kubernetes-validate")
    return subprocess.run([str(tool), "--strict", *map(str, sorted(out.glob("*.yaml")))],
                          capture_output=True, text=True, timeout=300)


__all__ = ["SHIM_MOUNT", "by_kind", "load_dir", "model_container", "shim_volume", "validate"]
