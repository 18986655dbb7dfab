"""``incucare bench vrptw|trsp --json`` on small variants: the keys scripts and the benchmark runner rely on."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from incucare.adapters.routing.reports import benchmark_data_dir
from incucare.cli import app

DATA = benchmark_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "solomon").is_dir() and os.environ.get("CI") != "true",
                                reason=f"no benchmark data at {DATA} (in CI these tests run, and fail without it)")
runner = CliRunner()


def test_bench_vrptw_prints_distance_vehicles_routes_feasible() -> None:
    result = runner.invoke(app, ["bench", "vrptw", str(DATA / "solomon" / "R101.txt"), "--customers", "12",
                                 "--time-limit", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"distance", "distance_exact", "vehicles", "routes", "feasible"} <= report.keys()
    assert report["feasible"] is True
    assert report["vehicles"] == len(report["routes"])
    assert sorted(c for route in report["routes"] for c in route) == list(range(1, 13))
    assert report["distance"] <= report["distance_exact"]


def test_bench_trsp_prints_routes_in_the_instance_ids() -> None:
    result = runner.invoke(app, ["bench", "trsp", str(DATA / "trsp" / "RC101.100_25-5-5-5.txt"), "--requests", "10",
                                 "--time-limit", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"duration", "travel", "routes", "feasible"} <= report.keys()
    assert report["feasible"] is True
    served = []
    for route in report["routes"]:
        technician, *stops, home = route
        assert 1 <= technician <= 25
        assert home == technician
        served += [s for s in stops if s != 0]
    assert sorted(served) == list(range(26, 36))
    assert report["duration"] >= report["travel"]


def test_bench_trsp_can_count_its_budget_in_cpu_time() -> None:
    result = runner.invoke(app, ["bench", "trsp", str(DATA / "trsp" / "C101.100_25-5-5-5.txt"), "--requests", "8",
                                 "--time-limit", "0.3", "--cpu-time", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["clock"] == "cpu"
    assert report["feasible"] is True
    assert 0 < report["cpu_seconds"] <= report["wall_seconds"] + 0.5


def test_bench_without_json_prints_a_summary() -> None:
    result = runner.invoke(app, ["bench", "vrptw", str(DATA / "solomon" / "C201.txt"), "--customers", "8",
                                 "--time-limit", "0.2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("C201: distance ")


def test_bench_refuses_a_missing_file() -> None:
    result = runner.invoke(app, ["bench", "vrptw", str(DATA / "nope.txt"), "--json"])
    assert result.exit_code != 0
