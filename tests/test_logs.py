import json
import logging

from kiosk.logs import JsonFormatter, OncePerInterval, redact


def _format(msg, *args, **extra):
    record = logging.LogRecord("kiosk.test", logging.INFO, __file__, 1, msg, args, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return json.loads(JsonFormatter().format(record))


def test_log_line_is_one_json_object_with_extras():
    line = _format("gate %s", "opened", seq=12, state="ok")
    assert line["msg"] == "gate opened"
    assert line["seq"] == 12 and line["state"] == "ok"
    assert line["level"] == "info" and line["logger"] == "kiosk.test"


def test_phone_and_id_numbers_never_reach_a_log_line():
    line = _format("visitor 13812345678 id 11010519491231002X", note="call 13900001111")
    text = json.dumps(line)
    assert "13812345678" not in text
    assert "11010519491231002X" not in text
    assert "13900001111" not in text
    assert "138********" in line["msg"]


def test_redact_keeps_ordinary_numbers():
    assert redact("seq 123456 temp 36.8 latency 12ms") == "seq 123456 temp 36.8 latency 12ms"


def test_once_per_interval_logs_one_of_each_kind_and_counts_the_rest():
    every = OncePerInterval(10.0)
    assert every.due(100.0) == 0  # the first is logged, none untold
    assert [every.due(100.0 + t) for t in (1, 5, 9.9)] == [None, None, None]
    assert every.due(100.0, "other") == 0  # each kind on its own
    assert every.due(110.0) == 3  # the interval is over: logged, saying the three not
    assert every.due(115.0) is None and every.due(125.0) == 1
