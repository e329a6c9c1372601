import json
import logging

from kiosk.logs import JsonFormatter, redact


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
