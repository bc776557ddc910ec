"""A ModelService as Kubernetes objects, built with the official client's models.

What each spec field becomes (docs/fleet.md has the table and the reasons):

- each served version -> a ``Deployment`` ``NAME-vN`` whose pod runs the version's image
  with the worker shim's HTTP front (``modelport_worker.http_front`` on port 8080: no
  runtime or gateway in a pod), readiness = the package's setup has finished, liveness =
  the process answers, a startup probe as long as ``deploy_timeout_s``; rolling updates
  never take a ready pod away before its successor is ready (maxUnavailable 0), as
  modelport's own rollouts;
- ``resources`` -> requests and limits (``gpu`` -> ``nvidia.com/gpu``);
- ``env`` -> a ``ConfigMap`` (values whose name says secret, token, password or key go
  to a ``Secret``);
- the traffic split -> one ``Service`` ``NAME`` over every version's pods, with the
  replicas of each version in proportion to its share (the split of plain Kubernetes),
  and a ``Service`` ``NAME-vN`` per version for clients that pin one;
- ``autoscaling`` -> a ``HorizontalPodAutoscaler`` (autoscaling/v2) per version;
- two or more replicas -> a ``PodDisruptionBudget`` (at most one unavailable);
- the stdlib worker shim itself -> a ``ConfigMap`` mounted at ``/opt/modelport/shim``
  (it is not in the image: the platform mounts it, and so does the pod).

The image of a version is a template (``--image``), by default
``modelport/{name}:v{version}``: tag the platform's built image (``modelport versions``
shows its artifact) or build one, and push it where the cluster pulls from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from modelport.spec.service import ServiceSpecBody

PORT = 8080
IMAGE_ROOT = "/opt/modelport"
SHIM_MOUNT = f"{IMAGE_ROOT}/shim"
SHIM_CONFIGMAP = "modelport-worker-shim"
DEFAULT_IMAGE = "modelport/{name}:v{version}"
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL)",
                          re.IGNORECASE)
_ENCODER = k8s.ApiClient()


@dataclass
class ExportTarget:
    """One service to render: its spec and the versions it serves with their shares."""

    name: str
    spec: ServiceSpecBody
    #: {version: percent}; one entry for an unsplit service
    split: dict[int, float]
    annotations: dict[str, str] = field(default_factory=dict)


def target_from_spec(name: str, spec: ServiceSpecBody, version: int = 0,
                     annotations: dict[str, str] | None = None) -> ExportTarget:
    """A service from its spec: the spec's traffic split, else ``version`` (or the model
    reference's, else 1) takes everything."""
    if spec.traffic:
        split = {t.version: t.percent for t in spec.traffic if t.percent > 0}
    else:
        split = {version or (spec.model.version if spec.model else 0) or 1: 100.0}
    return ExportTarget(name, spec, split, dict(annotations or {}))


def target_from_view(view: dict[str, Any]) -> ExportTarget:
    """A deployed service as the REST API shows it (``modelport get NAME --json``):
    its spec, and the split that serves now."""
    raw = view.get("spec") or {}
    fields = set(ServiceSpecBody.model_fields) - {"package", "model"}
    body = {k: v for k, v in raw.items() if k in fields and v is not None}
    if body.get("autoscaling") is None:
        body.pop("autoscaling", None)
    if not body.get("timeout_s"):
        body.pop("timeout_s", None)
    spec = ServiceSpecBody.model_validate(body)
    split = {int(t["version"]): float(t["percent"]) for t in view.get("traffic") or []
             if float(t.get("percent") or 0) > 0}
    if not split:
        version = int(view.get("serving_version") or view.get("target_version") or 1)
        split = {version: 100.0}
    return ExportTarget(str(view["name"]), spec, split, dict(raw.get("annotations") or {}))


def replicas_per_version(split: dict[int, float], total: int) -> dict[int, int]:
    """All replicas for one version; by share, at least one each, for several (as the
    platform's controller counts them)."""
    if len(split) == 1:
        return {v: total for v in split}
    return {v: max(1, round(total * p / 100.0)) for v, p in split.items()}


def render(target: ExportTarget, *, image: str = DEFAULT_IMAGE, namespace: str = "",
           shim_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every object of one service, as plain dicts ready for YAML (camelCase keys).
    ``shim_dir``: the worker shim to ship as a ConfigMap (None: leave it out, e.g. when
    several services are rendered together and :func:`shim_configmap` is added once)."""
    objects: list[Any] = []
    env_cm, env_secret = _env_objects(target, namespace)
    objects += [o for o in (env_cm, env_secret) if o is not None]
    auto = target.spec.autoscaling
    total = auto.min if auto is not None else target.spec.replicas
    counts = replicas_per_version(target.split, max(total, 1 if auto is not None else 0))
    for version in sorted(target.split):
        objects.append(_deployment(target, version, counts[version], image, namespace,
                                   env_cm, env_secret))
        objects.append(_service(target, namespace, version))
        if auto is not None:
            objects.append(_autoscaler(target, version, namespace))
        if (auto.max if auto is not None else counts[version]) >= 2:
            objects.append(_disruption_budget(target, version, namespace))
    objects.append(_service(target, namespace, None))
    out = [_ENCODER.sanitize_for_serialization(o) for o in objects]
    if shim_dir is not None:
        out.insert(0, shim_configmap(shim_dir, namespace))
    return out


def shim_configmap(shim_dir: Path, namespace: str = "") -> dict[str, Any]:
    """The worker shim's sources as one ConfigMap; a key per file (``kinds-x.py`` for
    ``kinds/x.py``: keys cannot hold ``/``), mapped back to paths by the pod's volume."""
    data = {key: path.read_text() for key, path in _shim_files(shim_dir)}
    cm = k8s.V1ConfigMap(api_version="v1", kind="ConfigMap",
                         metadata=_meta(SHIM_CONFIGMAP, namespace, {
                             "app.kubernetes.io/part-of": "modelport",
                             "app.kubernetes.io/component": "worker-shim"}),
                         data=data)
    return _ENCODER.sanitize_for_serialization(cm)


def _shim_files(shim_dir: Path) -> list[tuple[str, Path]]:
    return sorted((p.relative_to(shim_dir).as_posix().replace("/", "-"), p)
                  for p in Path(shim_dir).rglob("*.py") if "__pycache__" not in p.parts)


def _labels(target: ExportTarget, version: int | None) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": target.name, "app.kubernetes.io/part-of": "modelport",
              "app.kubernetes.io/managed-by": "modelport"}
    if version is not None:
        labels["modelport.io/version"] = str(version)
    return labels


def _selector(target: ExportTarget, version: int | None) -> dict[str, str]:
    sel = {"app.kubernetes.io/name": target.name}
    if version is not None:
        sel["modelport.io/version"] = str(version)
    return sel


def _meta(name: str, namespace: str, labels: dict[str, str],
          annotations: dict[str, str] | None = None) -> k8s.V1ObjectMeta:
    return k8s.V1ObjectMeta(name=name, namespace=namespace or None, labels=labels,
                            annotations=annotations or None)


def _env_objects(target: ExportTarget, namespace: str
                 ) -> tuple[k8s.V1ConfigMap | None, k8s.V1Secret | None]:
    plain = {k: v for k, v in target.spec.env.items() if not _SECRET_NAME.search(k)}
    secret = {k: v for k, v in target.spec.env.items() if _SECRET_NAME.search(k)}
    labels = _labels(target, None)
    cm = k8s.V1ConfigMap(api_version="v1", kind="ConfigMap",
                         metadata=_meta(f"{target.name}-env", namespace, labels),
                         data=plain) if plain else None
    sec = k8s.V1Secret(api_version="v1", kind="Secret", type="Opaque",
                       metadata=_meta(f"{target.name}-secret-env", namespace, labels),
                       string_data=secret) if secret else None
    return cm, sec


def _resources(target: ExportTarget) -> k8s.V1ResourceRequirements | None:
    r = target.spec.resources
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if r.cpu:
        cpu = f"{math.ceil(r.cpu * 1000)}m"
        limits["cpu"] = requests["cpu"] = cpu
    if r.memory:
        limits["memory"] = requests["memory"] = r.memory
    if r.gpu:
        limits["nvidia.com/gpu"] = str(r.gpu)  # extended resources: limits only
    if not limits:
        return None
    return k8s.V1ResourceRequirements(limits=limits, requests=requests or None)


def _probe(path: str, period: int, failures: int, delay: int = 0) -> k8s.V1Probe:
    return k8s.V1Probe(http_get=k8s.V1HTTPGetAction(path=path, port="http"),
                       period_seconds=period, failure_threshold=failures,
                       initial_delay_seconds=delay or None, timeout_seconds=2)


def _deployment(target: ExportTarget, version: int, replicas: int, image: str, namespace: str,
                env_cm: k8s.V1ConfigMap | None, env_secret: k8s.V1Secret | None
                ) -> k8s.V1Deployment:
    name = f"{target.name}-v{version}"
    env_from = []
    if env_cm is not None:
        env_from.append(k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(
            name=env_cm.metadata.name)))
    if env_secret is not None:
        env_from.append(k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(
            name=env_secret.metadata.name)))
    timeout_s = target.spec.deploy_timeout_s
    container = k8s.V1Container(
        name="model",
        image=image.format(name=target.name, version=version),
        command=[f"{IMAGE_ROOT}/venv/bin/python", "-m", "modelport_worker.http_front",
                 "--package", f"{IMAGE_ROOT}/package", "--port", str(PORT),
                 "--service", target.name],
        ports=[k8s.V1ContainerPort(name="http", container_port=PORT, protocol="TCP")],
        env=[k8s.V1EnvVar(name="PYTHONPATH", value=SHIM_MOUNT),
             k8s.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
             k8s.V1EnvVar(name="HOME", value="/tmp"),
             k8s.V1EnvVar(name="MODELPORT_SERVICE", value=target.name),
             k8s.V1EnvVar(name="MODELPORT_VERSION", value=str(version))],
        env_from=env_from or None,
        resources=_resources(target),
        readiness_probe=_probe("/health/ready", 2, 3),
        liveness_probe=_probe("/health/live", 10, 3),
        # setup may take as long as the spec allows a rollout to take
        startup_probe=_probe("/health/ready", 5, max(1, math.ceil(timeout_s / 5))),
        security_context=k8s.V1SecurityContext(allow_privilege_escalation=False),
        volume_mounts=[k8s.V1VolumeMount(name="shim", mount_path=SHIM_MOUNT, read_only=True),
                       k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
    )
    items = [k8s.V1KeyToPath(key=key, path=f"modelport_worker/{key.replace('-', '/')}")
             for key, _ in _shim_files(_shim_root())]
    shim_volume = k8s.V1Volume(name="shim", config_map=k8s.V1ConfigMapVolumeSource(
        name=SHIM_CONFIGMAP, items=items))
    labels = _labels(target, version)
    pod = k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=labels),
        spec=k8s.V1PodSpec(
            containers=[container],
            volumes=[shim_volume, k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())],
            # model code has no business with the cluster's API
            automount_service_account_token=False,
            termination_grace_period_seconds=30,
            # replicas spread over nodes, as the platform spreads them over hosts
            topology_spread_constraints=[k8s.V1TopologySpreadConstraint(
                max_skew=1, topology_key="kubernetes.io/hostname",
                when_unsatisfiable="ScheduleAnyway",
                label_selector=k8s.V1LabelSelector(match_labels=_selector(target, version)))],
        ))
    return k8s.V1Deployment(
        api_version="apps/v1", kind="Deployment",
        metadata=_meta(name, namespace, labels, target.annotations or None),
        spec=k8s.V1DeploymentSpec(
            replicas=None if target.spec.autoscaling is not None else replicas,
            selector=k8s.V1LabelSelector(match_labels=_selector(target, version)),
            strategy=k8s.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=k8s.V1RollingUpdateDeployment(max_surge=1, max_unavailable=0)),
            progress_deadline_seconds=max(1, math.ceil(timeout_s)),
            template=pod))


def _service(target: ExportTarget, namespace: str, version: int | None) -> k8s.V1Service:
    name = target.name if version is None else f"{target.name}-v{version}"
    return k8s.V1Service(
        api_version="v1", kind="Service",
        metadata=_meta(name, namespace, _labels(target, version)),
        spec=k8s.V1ServiceSpec(
            selector=_selector(target, version), type="ClusterIP",
            ports=[k8s.V1ServicePort(name="http", port=80, target_port="http",
                                     protocol="TCP")]))


def _autoscaler(target: ExportTarget, version: int, namespace: str
                ) -> k8s.V2HorizontalPodAutoscaler:
    auto = target.spec.autoscaling
    assert auto is not None
    share = target.split[version] / 100.0
    most = max(1, math.ceil(auto.max * share))
    least = min(most, max(1, math.ceil(auto.min * share)))  # HPA cannot scale to zero
    name = f"{target.name}-v{version}"
    return k8s.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2", kind="HorizontalPodAutoscaler",
        metadata=_meta(name, namespace, _labels(target, version)),
        spec=k8s.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k8s.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name=name),
            min_replicas=least, max_replicas=most,
            metrics=[k8s.V2MetricSpec(type="Resource", resource=k8s.V2ResourceMetricSource(
                name="cpu", target=k8s.V2MetricTarget(type="Utilization",
                                                      average_utilization=70)))],
            behavior=k8s.V2HorizontalPodAutoscalerBehavior(
                scale_down=k8s.V2HPAScalingRules(
                    stabilization_window_seconds=max(0, math.ceil(auto.scale_down_delay_s))))))


def _disruption_budget(target: ExportTarget, version: int, namespace: str
                       ) -> k8s.V1PodDisruptionBudget:
    return k8s.V1PodDisruptionBudget(
        api_version="policy/v1", kind="PodDisruptionBudget",
        metadata=_meta(f"{target.name}-v{version}", namespace, _labels(target, version)),
        spec=k8s.V1PodDisruptionBudgetSpec(
            max_unavailable=1,
            selector=k8s.V1LabelSelector(match_labels=_selector(target, version))))


def _shim_root() -> Path:
    import modelport.worker
    return Path(modelport.worker.__file__).parent


def render_all(targets: Iterable[ExportTarget], *, image: str = DEFAULT_IMAGE,
               namespace: str = "") -> dict[str, list[dict[str, Any]]]:
    """``{file stem: objects}``: one file per service, and the shared shim ConfigMap."""
    out = {"modelport-worker-shim": [shim_configmap(_shim_root(), namespace)]}
    for t in targets:
        out[t.name] = render(t, image=image, namespace=namespace)
    return out
