"""triton_server's derived values (plugins/filter/triton_server_plan.py): the ports, the API key's
files and mounts, tritonserver's command line, what `dltk repo load` loads and dltk's answers.
The strings tritonserver's container is made from (command, health check) are compared exactly:
a different string recreates the serving container on the next deploy."""

from __future__ import annotations

import pytest
from role_plugins import load_role_plugin

plan = load_role_plugin("plugins/filter/triton_server_plan.py")

VARS = {
    "http_port": 8000,
    "grpc_port": "8001",  # -e gives strings
    "metrics_port": 8002,
    "restricted_apis": ["model-repository", "statistics"],
    "api_key_dir": "/ctl/secrets",
    "secrets_dir": "/opt/dltk/secrets",
    "host": "gpu-01",
    "container_name": "tritonserver",
    "load_via": "toolkit_container",
    "bind_address": "127.0.0.1",
    "model_repo_dir": "/opt/dltk/model_repo",
    "previous_dir": "/opt/dltk/model_repo.previous",
}
RUN = {
    "model_control_mode": "explicit",
    "extra_args": ["--log-verbose=1"],
    "skipped": {},
    "loadable": ["mnist", "mnist_classifier"],
    "changed": ["mnist_classifier", "mnist"],
    "removed": ["old"],
    "load_timeout": "300",
}


def test_ports_key_files_and_where_dltk_reaches_the_server() -> None:
    s = plan.triton_server_settings(VARS)
    assert s["ports"] == [8000, 8001, 8002]
    assert s["restricted"] is True
    assert s["api_key_host"] == "/opt/dltk/secrets/triton-api-key"
    assert s["api_key_local"] == "/ctl/secrets/gpu-01/triton-api-key"
    key = {"type": "bind", "source": "/opt/dltk/secrets/triton-api-key",
           "target": "/run/secrets/triton-api-key", "read_only": True}  # fmt: skip
    assert s["key_mounts"] == [key]
    assert s["api"] == {"url": "tritonserver:8000", "repo": "/models", "previous": "/previous",
                        "key": "/run/secrets/triton-api-key"}  # fmt: skip
    assert s["api_key_args"] == ["--api-key-file", "/run/secrets/triton-api-key"]
    assert s["dltk_mounts_ro"] == [
        {"type": "bind", "source": "/opt/dltk/model_repo", "target": "/models", "read_only": True},
        key,
    ]
    assert s["dltk_mounts_rw"] == [
        {"type": "bind", "source": "/opt/dltk/model_repo", "target": "/models"},
        {"type": "bind", "source": "/opt/dltk/model_repo.previous", "target": "/previous",
         "read_only": True},
        key,
    ]  # fmt: skip


def test_from_the_control_node_dltk_uses_the_published_port_and_the_local_key() -> None:
    s = plan.triton_server_settings({**VARS, "load_via": "control_node", "http_port": "18000"})
    assert s["api"] == {"url": "127.0.0.1:18000", "repo": "/opt/dltk/model_repo",
                        "previous": "/opt/dltk/model_repo.previous",
                        "key": "/ctl/secrets/gpu-01/triton-api-key"}  # fmt: skip
    assert s["api_key_args"] == ["--api-key-file", "/ctl/secrets/gpu-01/triton-api-key"]


def test_no_restricted_api_means_no_key_anywhere() -> None:
    s = plan.triton_server_settings({**VARS, "restricted_apis": []})
    assert s["restricted"] is False and s["key_mounts"] == [] and s["api_key_args"] == []
    assert s["dltk_mounts_ro"] == [
        {"type": "bind", "source": "/opt/dltk/model_repo", "target": "/models", "read_only": True}
    ]
    run = plan.triton_server_command(s, RUN)
    assert run["command"][0] == "tritonserver"


def test_the_command_behind_the_key_wrapper_is_the_one_the_containers_run_today() -> None:
    s = plan.triton_server_settings(VARS)
    run = plan.triton_server_command(s, RUN)
    wrapper = (
        'key=$(cat /run/secrets/triton-api-key) && exec tritonserver "$@"'
        ' --http-restricted-api=model-repository,statistics:dltk-api-key="$key"'
        ' --grpc-restricted-protocol=model-repository,statistics:dltk-api-key="$key"'
    )
    assert run["command"] == [
        "bash", "-c", wrapper, "tritonserver",
        "--model-repository=/models", "--http-port=8000", "--grpc-port=8001",
        "--metrics-port=8002", "--model-control-mode=explicit", "--load-model=*",
        "--log-verbose=1",
    ]  # fmt: skip
    assert s["healthcheck"] == (
        "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /v2/health/ready HTTP/1.0\\r\\n\\r\\n' >&3"
        " && head -n 1 <&3 | grep -q ' 200 '"
    )


def test_skipped_models_are_neither_loaded_at_start_nor_through_the_api() -> None:
    s = plan.triton_server_settings(VARS)
    run = plan.triton_server_command(
        s, {**RUN, "skipped": {"mnist_trt_fp16": "tensorrt"}, "loadable": ["mnist"],
            "changed": ["mnist_trt_fp16", "mnist"]}
    )  # fmt: skip
    assert "--load-model=mnist" in run["command"] and "--load-model=*" not in run["command"]
    assert run["changed"] == ["mnist"]
    assert run["load_args"] == ["--timeout", "300", "--unload=old", "mnist"]


def test_model_control_none_loads_everything_at_start() -> None:
    s = plan.triton_server_settings({**VARS, "restricted_apis": []})
    run = plan.triton_server_command(s, {**RUN, "model_control_mode": "none", "extra_args": []})
    assert run["command"] == ["tritonserver", "--model-repository=/models", "--http-port=8000",
                              "--grpc-port=8001", "--metrics-port=8002"]  # fmt: skip
    assert run["changed"] == ["mnist", "mnist_classifier"]


OUT = 'loading\n{"loaded": ["mnist"]}\n'


@pytest.mark.parametrize(
    ("v", "rc", "output", "sync"),
    [
        (
            {"via": "toolkit_container",
             "container": {"status": 0, "container": {"Output": OUT}}},
            0, OUT, {"loaded": ["mnist"]},
        ),
        # The container did not run: docker_container's message is the output.
        ({"via": "toolkit_container", "container": {"msg": "no image"}}, 1, "no image", {}),
        (
            {"via": "control_node", "local": {"rc": 3, "stdout": "x", "stderr": "boom"},
             "container": {"skipped": True}},
            3, "x\nboom", {},
        ),
    ],
)  # fmt: skip
def test_dltks_answer_from_the_toolkit_container_or_the_control_node(v, rc, output, sync) -> None:
    assert plan.triton_server_dltk_answer(v) == {"rc": rc, "output": output, "sync": sync}


def test_only_ports_the_running_container_does_not_publish_are_checked() -> None:
    bindings = {
        "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000"}],
        "8002/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8002"}],
    }
    current = {"HostConfig": {"PortBindings": bindings}}
    addresses = ["127.0.0.1", "127.0.0.1", "127.0.0.1"]
    assert plan.new_bindings(addresses, [8000, 8001, 8002], current) == ["127.0.0.1:8001:8001"]
    assert plan.new_bindings(addresses, [9000, 8001, 8002], {}) == [
        "127.0.0.1:9000:9000", "127.0.0.1:8001:8001", "127.0.0.1:8002:8002"]  # fmt: skip
