"""serving/*.config parse with TF Serving's own messages; docker-compose mounts read-only on loopback."""
from pathlib import Path

import pytest
import yaml

from tfaug.errors import TfaugError
from tfaug.serving.config_protos import (
    batching_parameters_class,
    model_server_config_class,
    monitoring_config_class,
    parse_config,
)

SERVING = Path(__file__).resolve().parents[2] / "serving"


def _models(name):
    return list(parse_config(SERVING / name, model_server_config_class()).model_config_list.config)


def test_models_config_lists_generators_and_a_classifier_with_policies():
    models = _models("models.config")
    names = [m.name for m in models]
    assert {"digits_cdcgan", "mnist_cdcgan", "mnist_bagan", "digits_classifier"} <= set(names)
    assert len(names) == len(set(names))
    for m in models:
        assert m.model_platform == "tensorflow", m.name
        assert m.base_path == f"/models/{m.name}", "docker mounts saved_models at /models"
        assert m.model_version_policy.WhichOneof("policy_choice") in ("latest", "specific", "all"), m.name
        if m.model_version_policy.WhichOneof("policy_choice") == "specific":
            # A label may only point at a version the policy loads.
            assert set(m.version_labels.values()) <= set(m.model_version_policy.specific.versions), m.name
    labelled = {m.name: dict(m.version_labels) for m in models if m.version_labels}
    assert {"stable", "canary"} <= set(labelled["digits_cdcgan"])


def test_local_config_mirrors_docker_config_with_relative_paths():
    docker, local = _models("models.config"), _models("models.local.config")
    assert [m.name for m in docker] == [m.name for m in local]
    for d, l in zip(docker, local):
        assert l.base_path == f"../saved_models/{d.name}"
        assert (SERVING / l.base_path).resolve() == (SERVING.parent / "saved_models" / d.name).resolve()
        assert l.model_version_policy == d.model_version_policy and dict(l.version_labels) == dict(d.version_labels)


def test_local_server_reads_the_local_config_relative_to_its_directory():
    from tfaug.serving.config import read_model_config

    specs = {s.name: s for s in read_model_config(SERVING / "models.local.config")}
    assert set(specs) == {m.name for m in _models("models.config")}
    for name, spec in specs.items():
        assert spec.base_path == (SERVING.parent / "saved_models" / name).resolve()
    assert specs["digits_cdcgan"].labels == {"stable": 1, "canary": 2}
    assert specs["digits_cdcgan"].policy == "specific" and specs["mnist_cdcgan"].num_versions == 2


def test_batching_and_monitoring_configs_parse():
    batching = parse_config(SERVING / "batching.config", batching_parameters_class())
    assert batching.max_batch_size.value >= 16 and batching.batch_timeout_micros.value > 0
    assert batching.num_batch_threads.value >= 1
    monitoring = parse_config(SERVING / "monitoring.config", monitoring_config_class())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path.startswith("/")


@pytest.mark.parametrize(
    "message_class, text",
    [
        (batching_parameters_class, "max_batch_sise { value: 8 }"),
        (monitoring_config_class, "prometheus_config { enabled: true }"),
        (model_server_config_class, 'model_config_list { config { name: "a" base_pth: "/m" } }'),
    ],
)
def test_a_misspelt_field_fails_to_parse(tmp_path, message_class, text):
    path = tmp_path / "bad.config"
    path.write_text(text)
    with pytest.raises(TfaugError, match="bad.config is not a valid"):
        parse_config(path, message_class())


def test_docker_compose_mounts_read_only_binds_loopback_and_passes_configs():
    compose = yaml.safe_load((SERVING / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    assert service["image"].startswith("tensorflow/serving:") and not service["image"].endswith(":latest")
    mounts = {v["target"]: v for v in service["volumes"]}
    assert mounts["/models"]["source"] == "../saved_models" and mounts["/models"]["read_only"] is True
    assert all(v["read_only"] is True for v in service["volumes"])
    assert service["ports"] and all(p.startswith("127.0.0.1:") for p in service["ports"])
    flags = dict(arg.split("=", 1) for arg in service["command"])
    config_dir = mounts[str(Path(flags["--model_config_file"]).parent)]["source"]
    assert config_dir == "."  # the serving/ folder itself
    for flag, name in [("--model_config_file", "models.config"), ("--batching_parameters_file", "batching.config"),
                       ("--monitoring_config_file", "monitoring.config")]:
        assert Path(flags[flag]).name == name and (SERVING / name).is_file()
    assert flags["--enable_batching"] == "true"
    assert {"--port", "--rest_api_port", "--model_config_file_poll_wait_seconds"} <= set(flags)
    assert {p.rsplit(":", 1)[-1] for p in service["ports"]} == {flags["--port"], flags["--rest_api_port"]}
