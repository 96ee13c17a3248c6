"""network_monitoring_app: its DAG's reports equal the reference and catch the injected anomalies."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from jupiter.model.bundled import example_apps
from jupiter.tools import traffic
from tests.apps.executor import Executor, InputOrder, load_script, read_configuration, shuffled
from tests.apps.structure import structure_problems

APP = example_apps()["network_monitoring_app"]
SAMPLES = sorted((APP / "sample_input").iterdir())


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor(APP)


def run_report(executor: Executor, frame: Path, workdir: Path, order: InputOrder = sorted) -> str:
    outputs = executor.run(frame, workdir, order)
    assert [path.name for path in outputs] == [f"{frame.stem}_report.txt"]
    return outputs[0].read_text()


def test_dag_is_the_original_one() -> None:
    lines = read_configuration(APP)
    assert structure_problems(lines) == []
    assert [(line.task, line.num_inputs, line.flag, line.children) for line in lines[:2]] == [
        ("local_pro", 1, False, ("aggregate0", "aggregate1", "aggregate2")),
        ("aggregate0", 1, True, ("simple_detector0", "astute_detector0")),
    ]
    assert len(lines) == 14
    assert lines[-1].children == ("home",) and lines[-1].num_inputs == 3


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.name)
def test_report_equals_reference(executor: Executor, sample: Path, tmp_path: Path) -> None:
    assert run_report(executor, sample, tmp_path) == traffic.expected_report(sample)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.name)
def test_injected_anomalies_are_flagged_and_nothing_else(sample: Path) -> None:
    spec = traffic.SAMPLES[sample.name]
    rows = traffic.parse_report(traffic.expected_report(sample))
    flagged = {row.start: row for row in rows}
    for anomaly in spec.anomalies:
        hits = [flagged[second] for second in anomaly.seconds if second in flagged]
        assert hits, f"{anomaly.kind} at {anomaly.start} not flagged"
        detectors = {name for row in hits for names in row.partitions.values() for name in names}
        # Each detector catches the anomaly it is built for.
        assert ("simple" if anomaly.kind == "flood" else "astute") in detectors
        assert all(row.score > 1.0 for row in hits)
    anomalous = {second for anomaly in spec.anomalies for second in anomaly.seconds}
    assert set(flagged) <= anomalous


def test_a_flood_is_seen_in_its_sources_partition() -> None:
    sample = APP / "sample_input" / "flood.ipsum"
    (flood,) = traffic.SAMPLES["flood.ipsum"].anomalies
    anomaly = load_script(APP / "scripts" / "anomaly.py")
    partition = anomaly.partition_of(flood.source)
    rows = traffic.parse_report(traffic.expected_report(sample))
    assert {row.start for row in rows} == set(flood.seconds)
    assert all(row.partitions == {partition: ("simple",)} for row in rows)


def test_inputs_are_told_apart_by_content_not_order(executor: Executor, tmp_path: Path) -> None:
    sample = APP / "sample_input" / "mixed.ipsum"
    reference = traffic.expected_report(sample)
    for seed in range(3):
        assert run_report(executor, sample, tmp_path / str(seed), order=shuffled(seed)) == reference


def test_unparsable_lines_and_comments(executor: Executor, tmp_path: Path) -> None:
    lines = (APP / "sample_input" / "scan.ipsum").read_text().splitlines()
    lines[10] = "garbage"
    lines[20] = "1313006400.5 10.0.0.1 x 10.0.0.2 80 40 T S"
    lines.insert(30, "!comment in the middle")
    lines.insert(40, "")
    frame = tmp_path / "edited.ipsum"
    frame.write_text("\n".join(lines) + "\n")
    report = run_report(executor, frame, tmp_path / "run")
    assert report == traffic.expected_report(frame)
    assert "(2 unparsable lines skipped)" in report


def test_an_empty_frame_gives_an_empty_report(executor: Executor, tmp_path: Path) -> None:
    frame = tmp_path / "empty.ipsum"
    frame.write_text("!IPSummaryDump 1.3\n")
    report = run_report(executor, frame, tmp_path / "run")
    assert report == traffic.expected_report(frame)
    assert report.splitlines()[1:5] == [
        "frame: empty.ipsum",
        "packets: 0 (0 unparsable lines skipped)",
        "bins: 0",
        "anomalous bins: 0",
    ]


def test_task_scripts_bind_their_partition_and_the_helper_is_no_task() -> None:
    tasks = [line.task for line in read_configuration(APP)]
    assert sorted(path.stem for path in (APP / "scripts").glob("*.py")) == sorted([*tasks, "anomaly"])
    assert not hasattr(load_script(APP / "scripts" / "anomaly.py"), "task")
    partitioned = [task for task in tasks if task[-1].isdigit()]
    assert len(partitioned) == 4 * 3
    bound = {task: load_script(APP / "scripts" / f"{task}.py").PARTITION for task in partitioned}
    assert bound == {task: int(task[-1]) for task in partitioned}


def test_a_misrouted_partition_is_refused(tmp_path: Path) -> None:
    local_pro = load_script(APP / "scripts" / "local_pro.py")
    aggregate1 = load_script(APP / "scripts" / "aggregate1.py")
    parts = local_pro.task("flood.ipsum", str(APP / "sample_input"), str(tmp_path))
    with pytest.raises(ValueError, match="holds partition 0 but this is aggregate1"):
        aggregate1.task(Path(parts[0]).name, str(tmp_path), str(tmp_path))


def test_fusion_needs_one_output_of_each_detector(tmp_path: Path) -> None:
    (tmp_path / "a_simple0.txt").write_text("!simple_detector\n!threshold 3.0\n")
    (tmp_path / "b_simple0.txt").write_text("!simple_detector\n!threshold 3.0\n")
    fusion = load_script(APP / "scripts" / "fusion_center0.py")
    with pytest.raises(ValueError, match="a second simple_detector output"):
        fusion.task(["a_simple0.txt", "b_simple0.txt"], str(tmp_path), str(tmp_path))


def test_samples_are_small_and_regenerate_identically(tmp_path: Path) -> None:
    assert sorted(traffic.SAMPLES) == [path.name for path in SAMPLES]
    for path in traffic.write_samples(tmp_path):
        shipped = APP / "sample_input" / path.name
        assert path.read_bytes() == shipped.read_bytes()
        assert shipped.stat().st_size < 300_000
        assert 2000 < len(shipped.read_text().splitlines()) < 5000


def test_generated_traffic_is_well_formed() -> None:
    spec = traffic.TrafficSpec(seed=1, duration=5, anomalies=(traffic.Anomaly("scan", 1313005202, 1, 3, "a", "b"),))
    packets = traffic.generate(spec)
    assert packets == traffic.generate(spec)
    assert packets == sorted(packets)
    scan = [p for p in packets if p.src == "a"]
    assert [(p.dport, p.flags, p.usec // 1_000_000) for p in scan] == [(port, "S", 1313005202) for port in (1, 2, 3)]
    text = traffic.render(spec, packets)
    assert text.splitlines()[2] == f"!data {traffic.FIELDS}"
    assert all(len(line.split()) == 8 for line in text.splitlines()[3:])


@pytest.mark.parametrize("task", ["local_pro", "fusion_center1", "global_fusion"])
def test_main_runs_on_sample_data(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    load_script(APP / "scripts" / f"{task}.py").main()
    printed = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert printed and all(path.is_file() and tmp_path in path.parents for path in printed)
    if task == "global_fusion":
        assert printed[0].read_text() == traffic.expected_report(SAMPLES[0])
    elif task == "fusion_center1":
        assert [path.name for path in printed] == [f"{SAMPLES[0].stem}_fusion1.txt"]
    else:
        assert [path.name for path in printed] == [f"{SAMPLES[0].stem}_part{k}.txt" for k in range(3)]
