"""The collector's status port and a client that leaves mid-answer.

A browser tab closed, a monitor's probe timing out, a DNS-rebinding page cut off after its
421: the write of the answer fails with ``BrokenPipeError``/``ConnectionResetError``.
``socketserver`` printed the whole traceback to stderr (the office's journal) for each one;
a client going away is not the collector's fault and says nothing worth a line. Anything
else a handler raises is still logged, with its traceback, through logging."""

from __future__ import annotations

import logging

import pytest

from office.collector import _BoundedServer


@pytest.fixture
def server():
    from http.server import BaseHTTPRequestHandler

    srv = _BoundedServer(("127.0.0.1", 0), BaseHTTPRequestHandler, 4, 2)
    yield srv
    srv.server_close()


@pytest.mark.parametrize("gone", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError()])
def test_a_client_gone_before_its_answer_is_no_traceback(server, gone, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="office.collector")
    try:
        raise gone
    except OSError:
        server.handle_error(None, ("192.0.2.7", 50000))
    assert capfd.readouterr().err == ""
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_a_handlers_own_fault_is_logged_with_its_traceback_not_printed(server, capfd, caplog):
    try:
        raise KeyError("status")
    except KeyError:
        server.handle_error(None, ("192.0.2.7", 50000))
    assert capfd.readouterr().err == ""
    (record,) = [r for r in caplog.records if r.name == "office.collector"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
