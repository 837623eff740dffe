"""JSON log lines carry service, host, the request context and extra fields."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from common_rpc import RequestContext, use_context
from common_rpc.chassis.logging import configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("widgets", "DEBUG", host="h1", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_context_and_extra(log_stream: io.StringIO) -> None:
    ctx = RequestContext(project_id="p1", user_id="u1")
    with use_context(ctx):
        logging.getLogger("widgets.api").info("made %s", "w1", extra={"widget_id": "w1"})
    (line,) = lines(log_stream)
    assert line["message"] == "made w1"
    assert line["level"] == "INFO" and line["logger"] == "widgets.api"
    assert (line["service"], line["host"]) == ("widgets", "h1")
    assert (line["request_id"], line["project_id"], line["user_id"]) == (ctx.request_id, "p1", "u1")
    assert line["widget_id"] == "w1"
    assert line["timestamp"].endswith("+00:00")


def test_outside_a_request_and_exceptions(log_stream: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed", extra={"obj": object()})
    (line,) = lines(log_stream)
    assert line["request_id"] == "-" and line["project_id"] is None
    assert "ValueError: boom" in line["exception"]
    assert line["obj"].startswith("<object")


def test_reconfigure_replaces_handler_and_text_mode(log_stream: io.StringIO) -> None:
    text = io.StringIO()
    configure_logging("widgets", "INFO", json=False, stream=text)
    ctx = RequestContext(project_id="p9")
    with use_context(ctx):
        logging.getLogger("x").info("hello")
        logging.getLogger("x").debug("hidden")
    assert log_stream.getvalue() == ""
    (line,) = text.getvalue().splitlines()
    assert f"[{ctx.request_id} p9] hello" in line and " INFO x " in line
