"""report.json: one typed record (`RunReport`) that every reader goes through; the reports
published under docs/results load, and written back they are the same JSON object, key order
included."""
import json
import math
from pathlib import Path

import pytest

from quadfire.errors import RunDirError
from quadfire.train.report import (DERIVED, FIELDS, KEY_ORDER, RunReport, read_report,
                                   record_eval, summary_line)

PUBLISHED = sorted((Path(__file__).parents[1] / "docs" / "results").rglob("report.json"))


def test_every_published_report_loads_and_writes_back_the_same_object():
    assert len(PUBLISHED) > 50
    for path in PUBLISHED:
        obj = json.loads(path.read_text())
        report = RunReport.from_json(obj, str(path))
        assert report.finished and report.measure is not None, path
        written = report.to_json()
        assert list(written) == list(obj) and written == obj, path
        assert report.accuracy_minus_paper == obj["accuracy_minus_paper"]


def test_every_field_is_written():
    assert sorted(KEY_ORDER) == sorted(FIELDS + list(DERIVED))


def _report(**kw):
    return {"accuracy": 91.5, "epochs_completed": 2, "epochs": 2, "settings": {"epochs": 2},
            **kw}


def test_reports_before_scratch_take_it_from_smoke_and_null_accuracy_is_nan():
    assert RunReport.from_json(_report(smoke=True)).scratch is True
    assert RunReport.from_json(_report(smoke=True, scratch=False)).scratch is False
    stopped = RunReport.from_json(_report(accuracy=None, epochs_completed=0, interrupted=True))
    assert math.isnan(stopped.accuracy) and not stopped.finished
    assert not RunReport.from_json(_report(settings={"epochs": 3})).finished


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"accuracy": "high"}',
                                     '{"accuracy": 1, "epochs_completed": 1}'])
def test_anything_else_is_an_error_naming_the_file(tmp_path, content):
    (tmp_path / "report.json").write_text(content)
    with pytest.raises(RunDirError, match=f"{tmp_path / 'report.json'} (cannot be read|is not "
                                          f"a run report)"):
        read_report(tmp_path)
    assert read_report(tmp_path / "none") is None


def test_eval_is_added_to_the_report_and_nothing_else_changes(tmp_path):
    obj = _report(run="digits-qif-s0", firing_rate=0.1)
    (tmp_path / "report.json").write_text(json.dumps(obj))
    record_eval(tmp_path, {"accuracy": 90.0})
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved.pop("eval") == {"accuracy": 90.0}
    assert {k: saved[k] for k in obj} == obj
    assert summary_line(read_report(tmp_path)) == \
        "digits-qif-s0: test accuracy 91.50%, mean firing rate 0.1000"
    # a checkpoint without its run's report: the eval alone, and again
    for _ in range(2):
        record_eval(tmp_path / "bare", {"accuracy": 80.0})
        assert json.loads((tmp_path / "bare" / "report.json").read_text()) == {
            "eval": {"accuracy": 80.0}}
    (tmp_path / "report.json").write_text("[]")
    with pytest.raises(RunDirError, match="is not a run report"):
        record_eval(tmp_path, {"accuracy": 90.0})
    assert (tmp_path / "report.json").read_text() == "[]"
