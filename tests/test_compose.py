"""docker-compose.yml's optional GPU profile (issue 14): off by default, a GPU training worker on the training
queue with the 15B recipe, and a vLLM server reading the trained folders."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())


def _gpu(service: dict) -> bool:
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any("gpu" in d.get("capabilities", []) for d in devices)


def test_the_gpu_services_start_only_with_the_gpu_profile():
    services = COMPOSE["services"]
    gpu = {name for name, s in services.items() if "gpu" in s.get("profiles", [])}
    assert gpu == {"gpu-training-worker", "vllm"}
    assert all(_gpu(services[name]) for name in gpu)
    assert not any(_gpu(s) for name, s in services.items() if name not in gpu)


def test_the_gpu_worker_takes_the_training_queue_with_the_15b_recipe_and_vllm_can_read_its_output():
    worker, vllm = COMPOSE["services"]["gpu-training-worker"], COMPOSE["services"]["vllm"]
    assert "-Q training" in worker["command"]
    assert worker["environment"]["CODEPREF_TRAINING_RECIPE"].endswith(":-starcoder-15b}")
    assert (Path(__file__).resolve().parents[1] / "training" / "recipes" / "starcoder-15b" / "pipeline.yaml").is_file()
    assert "codepref-data:/var/lib/codepref:ro" in vllm["volumes"]
    assert "--enable-lora" in vllm["command"]
