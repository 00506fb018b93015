"""The deployment files in deploy/, tested as far as this machine can (no Docker engine, no
cluster): the Kubernetes manifests validate against the Kubernetes JSON schemas (shipped
offline by the `kubernetes-validate` package), the compose file against the Compose
Specification's schema (vendored, tests/data/compose-spec/), the Dockerfile parses
(`dockerfile-parse`), every environment variable they set is one the service reads, and the
commands they run — the build-time ONNX export, the migration, `serve`, the health checks,
the Chroma server, two replicas on PostgreSQL — run here with the same arguments, in
subprocesses.

Not run here: `docker build`, `docker compose up`, `kubectl apply`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from pydantic import BaseModel

from bot.settings import FromEnv, Settings, load_settings
from tests.support.processes import free_port, http, stop, wait_for

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.33.0"
# Process environment the image sets for the libraries under the service (README "The two
# commands" and the Makefile set the same), and Python's own.
PROCESS_ENV = {
    "PATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "XDG_CACHE_HOME",  # where the ONNX export is cached (adapters/embeddings/onnx_minilm.py)
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "LITELLM_LOCAL_MODEL_COST_MAP",
    "ANONYMIZED_TELEMETRY",
    "TOKENIZERS_PARALLELISM",
}
# Named by a setting's `*_env` field in the configuration files shipped in deploy/.
NAMED_BY_CONFIG = {"OPENAI_API_KEY"}


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=(DEPLOY / "Dockerfile").open("rb"))
    return parser


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def manifest(kind: str) -> dict[str, Any]:
    [found] = [doc for doc in manifests() if doc["kind"] == kind]
    return found


def json_form(instruction: str) -> list[str]:
    """The exec (JSON) form of CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    value = json.loads(instruction)
    assert isinstance(value, list), instruction
    return value


# --- schemas ---------------------------------------------------------------------------------


def test_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    docs = manifests()
    assert {doc["kind"] for doc in docs} >= {
        "Deployment",
        "PodDisruptionBudget",
        "Job",
        "Secret",
        "ConfigMap",
        "Service",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on a problem
    broken = json.loads(json.dumps(manifest("Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_deployment_probes_secrets_resources_and_disruption_budget() -> None:
    deployment = manifest("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert deployment["spec"]["replicas"] >= 2
    secret_keys = set(manifest("Secret")["stringData"])
    for workload in (container, manifest("Job")["spec"]["template"]["spec"]["containers"][0]):
        for entry in workload["env"]:
            if entry["name"] in SECRET_VARIABLES or entry["name"] == "DATABASE_URL":
                ref = entry["valueFrom"]["secretKeyRef"]  # a secret is never a literal value
                assert ref["name"] == "answerdesk-secrets" and ref["key"] in secret_keys
    text = (DEPLOY / "kubernetes" / "deployment.yaml").read_text()
    # Measured by the load benchmark (README, "Load and soak"), not guessed.
    assert "From benchmarks/load.py" in text and "PLACEHOLDER" not in text
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert container["resources"]["limits"] == {"memory": "1536Mi"}  # no CPU throttling
    budget = manifest("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert manifest("Job")["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "db",
        "upgrade",
    ]


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(
        (REPO / "tests" / "data" / "compose-spec" / "compose_spec.json").read_text()
    )
    spec = compose()
    jsonschema.validate(spec, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**spec, "services": {"x": {"ports": {"bad": 1}}}}, schema)
    services = spec["services"]
    replicas = [name for name, s in services.items() if s.get("command") == ["serve"]]
    assert len(replicas) == 2
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in replicas:
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["chroma"]["condition"] == "service_healthy"
    assert services["chroma"]["entrypoint"] == ["chroma"]
    assert services["chroma"]["command"][0] == "run"


def test_the_dockerfile_parses_runs_as_non_root_and_prepares_the_model_at_build_time() -> None:
    parsed = dockerfile()
    instructions = [(i["instruction"], i["value"]) for i in parsed.structure]
    runs = [value for kind, value in instructions if kind == "RUN"]
    torch_at = next(i for i, run in enumerate(runs) if '"torch==2.13.0"' in run)
    install_at = next(i for i, run in enumerate(runs) if "pip install ." in run)
    assert torch_at < install_at  # the CPU build first: nothing pulls a CUDA build
    assert "--index-url" in runs[torch_at]
    assert "answerdesk embeddings prepare" in runs[install_at]
    [user] = [value for kind, value in instructions if kind == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert json_form(parsed.cmd) == ["serve"]
    assert json_form(_instruction(parsed, "ENTRYPOINT")) == ["answerdesk"]


def _instruction(parsed: DockerfileParser, kind: str) -> str:
    [value] = [i["value"] for i in parsed.structure if i["instruction"] == kind]
    return value


# --- every variable set is one the service reads ----------------------------------------------


def _walk(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(the setting's environment name, its field) for every setting, sections included."""
    for name, info in model.model_fields.items():
        yield f"ANSWERDESK_{prefix}{name}".upper(), info
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation, f"{prefix}{name}__")


def _markers(kind: type) -> Iterator[Any]:
    for _name, info in _walk(Settings):
        yield from (marker for marker in info.metadata if isinstance(marker, kind))


SECRET_VARIABLES = {marker.variable for marker in _markers(FromEnv) if marker.secret}
SETTING_VARIABLES = (
    {name for name, _info in _walk(Settings)}
    | {marker.variable for marker in _markers(FromEnv)}
    | {"DATABASE_URL", "CHROMA_URL", "ANSWERDESK_CONFIG"}  # aliases; the config file's path
)


def _set_variables() -> dict[str, set[str]]:
    where: dict[str, set[str]] = {}
    for name in dockerfile().envs:
        where.setdefault(name, set()).add("Dockerfile")
    for service, body in compose()["services"].items():
        if body.get("image", "").startswith("answerdesk") and service != "chroma":
            for name in body.get("environment", {}):
                where.setdefault(name, set()).add(f"compose {service}")
    for doc in manifests():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            for entry in container.get("env", []):
                where.setdefault(entry["name"], set()).add(f"{doc['kind']} {container['name']}")
    return where


def test_every_environment_variable_the_files_set_is_one_the_service_reads() -> None:
    unknown = {
        name: places
        for name, places in _set_variables().items()
        if name not in SETTING_VARIABLES | PROCESS_ENV | NAMED_BY_CONFIG
    }
    assert not unknown, f"set but never read by the service: {unknown}"
    # And the settings loader accepts them as they are written.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dockerfile().envs.items():
            if name.startswith("ANSWERDESK_"):
                patch.setenv(name, value)
        loaded = load_settings()
    assert (loaded.server.host, loaded.server.port) == ("0.0.0.0", 8080)
    assert loaded.logging.format == "json"


# --- the commands, run here ----------------------------------------------------------------


def _cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`answerdesk ARGV` as the image's entrypoint runs it (the console script is
    `bot.cli:main`; `python -m bot` is the same entry)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _image_env(tmp_path: Path, port: int) -> dict[str, str]:
    """The Dockerfile's ENV with its paths moved under tmp_path (and this machine's ONNX
    cache, already exported, instead of /opt/answerdesk/cache)."""
    env = dict(dockerfile().envs)
    env.pop("PATH")
    env["XDG_CACHE_HOME"] = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    env["ANSWERDESK_DATA_DIR"] = str(tmp_path / "var")
    env["ANSWERDESK_SERVER__PORT"] = str(port)
    return env


def _exec_form(argv: list[str], port: int, listens: int = 8080) -> list[str]:
    """A health check's argv, run by this interpreter against this port."""
    assert argv[0] == "python"
    return [sys.executable, *[a.replace(f":{listens}/", f":{port}/") for a in argv[1:]]]


@contextmanager
def _running(argv: list[str], env: dict[str, str], url: str) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *argv],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(url, process, " ".join(argv), 240)
        yield process
    finally:
        stop(process)


def test_the_image_commands_run_here(tmp_path: Path) -> None:
    """The build step, the migration, `serve` (ENTRYPOINT + CMD with the image's ENV and the
    compose/ConfigMap configuration file) and the health checks: the same argv, here."""
    parsed = dockerfile()
    port = free_port()
    env = _image_env(tmp_path, port)
    config = tmp_path / "answerdesk.yaml"
    config.write_text(manifest("ConfigMap")["data"]["answerdesk.yaml"])
    env["ANSWERDESK_CONFIG"] = str(config)

    runs = [i["value"] for i in parsed.structure if i["instruction"] == "RUN"]
    [prepare] = [
        re.search(r"answerdesk (embeddings prepare[^&\n]*)", r) for r in runs if "prepare" in r
    ]
    assert prepare is not None
    done = _cli(prepare.group(1).split(), env)
    assert done.returncode == 0, done.stderr
    assert Path(json.loads(done.stdout)["onnx"]).is_file()

    migrate = compose()["services"]["migrate"]["command"]
    assert migrate == manifest("Job")["spec"]["template"]["spec"]["containers"][0]["args"]
    done = _cli(migrate, env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "var" / "answerdesk.db").is_file()

    entry = json_form(_instruction(parsed, "ENTRYPOINT")) + json_form(parsed.cmd)
    assert entry[0] == "answerdesk"
    url = f"http://127.0.0.1:{port}"
    with _running(entry[1:], env, f"{url}/healthz"):
        healthcheck = json_form(_instruction(parsed, "HEALTHCHECK").split("CMD", 1)[1].strip())
        assert subprocess.run(_exec_form(healthcheck, port), timeout=30).returncode == 0
        replica_check = compose()["services"]["answerdesk-1"]["healthcheck"]["test"][1:]
        assert subprocess.run(_exec_form(replica_check, port), timeout=30).returncode == 0
        pod = manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            status, body = http(f"{url}{pod[probe]['httpGet']['path']}")
            assert status == 200, (probe, body)
    down = subprocess.run(_exec_form(healthcheck, port), timeout=30, capture_output=True)
    assert down.returncode != 0  # the check fails once the service is gone


@pytest.mark.postgres
def test_the_compose_services_start_here_with_the_same_commands(
    tmp_path: Path, postgres_url: str
) -> None:
    """Chroma server, migration, then both replicas, each with its compose command and
    environment (service names → loopback ports, the database → a private one)."""
    services = compose()["services"]
    chroma_port = free_port()
    chroma_cmd = services["chroma"]["entrypoint"] + services["chroma"]["command"]
    chroma_cmd = [{"8000": str(chroma_port), "0.0.0.0": "127.0.0.1"}.get(a, a) for a in chroma_cmd]
    chroma_cmd[chroma_cmd.index("--path") + 1] = str(tmp_path / "chroma")
    executable = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert executable and chroma_cmd[0] == "chroma"
    config = tmp_path / "answerdesk.yaml"
    shutil.copy(DEPLOY / "answerdesk.yaml", config)

    def env_of(service: str, port: int) -> dict[str, str]:
        env = _image_env(tmp_path / service, port)
        for name, value in services[service]["environment"].items():
            env[name] = value
        env["DATABASE_URL"] = postgres_url
        env["CHROMA_URL"] = f"http://127.0.0.1:{chroma_port}"
        env["ANSWERDESK_CONFIG"] = str(config)
        return {k: v for k, v in env.items() if "${" not in v}

    with ExitStack() as stack:
        chroma = subprocess.Popen(
            [executable, *chroma_cmd[1:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stack.callback(stop, chroma, 30)
        wait_for(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", chroma, "chroma", 120)
        check = services["chroma"]["healthcheck"]["test"][1:]
        assert subprocess.run(_exec_form(check, chroma_port, 8000), timeout=30).returncode == 0

        done = _cli(services["migrate"]["command"], env_of("migrate", free_port()))
        assert done.returncode == 0, done.stderr

        urls = []
        for name in ("answerdesk-1", "answerdesk-2"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(
                _running(services[name]["command"], env_of(name, port), f"{url}/healthz")
            )
            urls.append(url)
        for url in urls:
            wait_for(f"{url}/readyz", chroma, "chroma", 240)
            status, body = http(f"{url}/readyz")
            assert status == 200 and body["checks"]["database"] == "ok", body
