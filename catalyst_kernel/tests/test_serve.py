"""`catalyst serve` on embedded defaults: a real process answering over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

CATALYST = str(Path(sys.executable).with_name("catalyst"))


def served_url(process: subprocess.Popen[str]) -> str:
    """The base URL ``catalyst serve`` announces on stderr (log lines may come first)."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return match.group(1)
    raise AssertionError("".join(seen))


def test_serve_runs_on_embedded_defaults_and_stops_on_sigint(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CATALYST_")}
    process = subprocess.Popen(
        [CATALYST, "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=environ,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = served_url(process)
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            providers = ready.json()["providers"]
            assert {slot: p["provider"] for slot, p in providers.items()} == {
                "spine": "embedded",
                "committer": "embedded",
                "secrets": "embedded",
                "identity": "dev",
            }
            token = subprocess.run(
                [CATALYST, "token", "--role", "org-viewer", "--org", "acme"],
                env={**environ, "CATALYST_DATA_DIR": str(tmp_path / "data")},
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
            plugins = client.get("/v1/plugins", headers={"Authorization": f"Bearer {token}"}).json()
            assert {p["name"] for p in plugins["plugins"]} >= {"core", "dev", "embedded"}
        assert (tmp_path / "data" / "spine" / "spine.db").exists()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) in (0, 1, -signal.SIGINT)


def test_serve_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CATALYST_")}
    result = subprocess.run(
        [CATALYST, "serve", "--port", "70000"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "catalyst: error: settings key port (from command line): port must be 0..65535, got 70000"
    ]


def test_serve_demo_bootstraps_acme_and_reconciles_installs(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CATALYST_")}
    process = subprocess.Popen(
        [CATALYST, "serve", "--demo", "--port", "0", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = served_url(process)
        assert process.stdout is not None
        tokens: dict[str, str] = {}
        for line in process.stdout:
            match = re.match(r"\s*export (CATALYST_DEMO_\w+)=(\S+)", line)
            if match:
                tokens[match.group(1)] = match.group(2)
            if "/history" in line:
                break
        assert "CATALYST_DEMO_SOVEREIGN_ADMIN" in tokens
        developer = {"Authorization": f"Bearer {tokens['CATALYST_DEMO_ORG_DEVELOPER']}"}
        with httpx.Client(base_url=base, timeout=30) as client:
            environments = client.get("/v1/organizations/acme/environments", headers=developer)
            assert [e["name"] for e in environments.json()["items"]] == [
                "acme-dev",
                "acme-prod",
                "acme-stg",
            ]
            installed = client.post(
                "/v1/environments/acme-dev/applications",
                json={"name": "cache", "blueprint": "bp-redis"},
                headers=developer,
            )
            assert installed.status_code == 201, installed.text
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline:
                listed = client.get("/v1/environments/acme-dev/applications", headers=developer)
                statuses = {item["name"]: item["status"] for item in listed.json()["items"]}
                status = statuses.get("cache")
                if status == "Running":
                    break
                time.sleep(0.2)
            assert status == "Running"
            minted = subprocess.run(
                [
                    CATALYST,
                    "token",
                    "--data-dir",
                    str(tmp_path / "data"),
                    "--sovereign",
                    "demo",
                    "--role",
                    "org-viewer",
                    "--org",
                    "acme",
                ],
                env=environ,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
            viewer = client.get(
                "/v1/environments/acme-dev/applications/cache/history",
                headers={"Authorization": f"Bearer {minted}"},
            )
            assert viewer.status_code == 200, viewer.text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) in (0, 1, -signal.SIGINT)
