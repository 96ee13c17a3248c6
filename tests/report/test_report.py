"""`jupiter report` from a deployment folder: charts, one self-contained page, and predictions compared honestly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jupiter.model.errors import InputError
from jupiter.report import latest_run, load_run, predicted_vs_measured, write_report
from jupiter.report.charts import format_seconds
from tests.report.helpers import frame_events, make_deployment

CHARTS = ("latency", "makespan", "predicted_gantt", "gantt", "dag", "predicted", "utilisation")


def _cell(text: str, row: str) -> list[str]:
    """The cells of the table row whose first cell starts with `row`."""
    match = re.search(r"<tr><td class=l>" + re.escape(row) + r"[^<]*</td>(.*?)</tr>", text)
    assert match, row
    return re.findall(r"<td>(.*?)</td>", match.group(1))


def test_frames_run_one_at_a_time_are_compared_with_the_single_frame_prediction(tmp_path: Path) -> None:
    root = make_deployment(tmp_path / "dep", frame_events(1, 100.0) + frame_events(2, 101.0) + frame_events(3, 102.0))
    record = load_run(root)
    assert record.mapping == {"split": "n1", "join": "n2"}
    rows = predicted_vs_measured(record)
    assert rows[0][0] == "split" and rows[0][2] == pytest.approx(0.2) and rows[0][3] == pytest.approx(0.2)
    page = write_report(root, tmp_path / "out")
    for name in CHARTS:
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    # Self-contained: every image is embedded, nothing is fetched.
    assert len(re.findall(r'src="data:image/png;base64,', text)) == len(CHARTS)
    assert not re.search(r'(src|href)="(http|/|\.)', text)
    # The prediction (first task start to last finish, 0.3 s) against the same span of frames that ran alone (0.39 s).
    assert _cell(text, "one frame alone (heft)") == [
        "300 ms",
        "390 ms (median of the 3 frames that ran alone)",
        "1.30",
    ]
    assert "one at a time (each after the previous finished)" in text
    assert "the stream, pipelined" not in text  # nothing overlapped: nothing to pipeline


def test_a_burst_gets_a_pipelined_prediction_and_no_single_frame_ratio(tmp_path: Path) -> None:
    events = [event for index in range(4) for event in frame_events(index + 1, 100.0 + 0.01 * index)]
    page = write_report(make_deployment(tmp_path / "dep", events), tmp_path / "out").read_text()
    assert _cell(page, "one frame alone (heft)") == ["300 ms", "no frame ran alone", "-"]
    assert "no frame ran alone (each overlapped another), so the single-frame prediction is not compared" in page
    cells = _cell(page, "the stream, pipelined (4 frames arriving as a burst)")
    # split (0.2 s on n1) is the bottleneck: the k-th frame's latency is 0.2 k + 0.1 (0.3, 0.5, 0.7, 0.9), p50 0.6.
    assert cells[0] == "600 ms"


def test_a_static_mapping_says_there_is_no_prediction(tmp_path: Path) -> None:
    root = make_deployment(tmp_path / "dep", frame_events(1, 100.0), predicted=False, profile=False)
    page = write_report(root, tmp_path / "out").read_text()
    assert "no prediction: the mapping was static, nothing was profiled to predict from" in page
    assert "No predicted schedule: the mapping was static." in page


def test_time_labels_are_ms_or_s_with_few_digits() -> None:
    assert [format_seconds(v, 0.3) for v in (0.0, 0.1, 0.25)] == ["0 ms", "100 ms", "250 ms"]
    assert [format_seconds(v, 0.005) for v in (0.001, 0.0025)] == ["1.0 ms", "2.5 ms"]
    assert [format_seconds(v, 5.0) for v in (2.0, 2.5)] == ["2.0 s", "2.5 s"]
    assert format_seconds(40.0, 60.0) == "40 s"


def test_a_folder_without_a_run_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"plan\.json: not found"):
        load_run(tmp_path)


def test_the_latest_run_skips_deployments_that_failed_before_a_frame(tmp_path: Path) -> None:
    state = tmp_path / ".jupiter"
    good = make_deployment(state / "20261204-010000-aaaaaa", frame_events(1, 100.0))
    # Later, a deploy that failed: a plan, and an event log without a frame (or none at all).
    make_deployment(state / "20261204-020000-bbbbbb", [])
    (state / "20261204-030000-cccccc").mkdir()
    (state / "current").write_text("20261204-030000-cccccc")
    assert latest_run(state) == good
    failed = tmp_path / "failed"
    make_deployment(failed / "20261204-020000-bbbbbb", [])
    with pytest.raises(InputError) as caught:
        latest_run(failed)
    assert str(caught.value) == (
        f"{failed}: no deployment has run a frame here (1 deployment folders without a frame skipped); "
        "run `jupiter run` first or pass --deployment"
    )
