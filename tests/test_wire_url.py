"""rtproto.wire.url: building Realtime URLs (spec section 1.1) and splitting them to dial."""

from __future__ import annotations

import pytest

from rtproto import LocalProtocolError
from rtproto.wire import realtime_url, split_url
from rtproto.wire.url import host_header, redact_url


def test_default_base_with_model() -> None:
    assert (
        realtime_url(model="gpt-realtime") == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.openai.com/v1", "wss://api.openai.com/v1/realtime?model=m"),
        ("https://api.openai.com/v1/", "wss://api.openai.com/v1/realtime?model=m"),
        ("http://localhost:8000/v1", "ws://localhost:8000/v1/realtime?model=m"),
        ("wss://example.com/v1/realtime", "wss://example.com/v1/realtime?model=m"),
        ("ws://example.com/v1/realtime/", "ws://example.com/v1/realtime?model=m"),
        ("HTTPS://api.openai.com/v1", "wss://api.openai.com/v1/realtime?model=m"),
        ("https://proxy.example/openai", "wss://proxy.example/openai/realtime?model=m"),
    ],
)
def test_base_url_forms(base: str, expected: str) -> None:
    assert realtime_url(base, model="m") == expected


def test_call_id_and_intent() -> None:
    assert realtime_url(call_id="rtc_123") == "wss://api.openai.com/v1/realtime?call_id=rtc_123"
    assert (
        realtime_url(intent="transcription")
        == "wss://api.openai.com/v1/realtime?intent=transcription"
    )


def test_query_is_merged_and_encoded() -> None:
    url = realtime_url(
        "https://api.openai.com/v1?api-version=2025-04-01",
        model="gpt realtime/1&2",
        query={"extra": "a b=c", "x": "é"},
    )
    assert url == (
        "wss://api.openai.com/v1/realtime?model=gpt%20realtime%2F1%262"
        "&api-version=2025-04-01&extra=a%20b%3Dc&x=%C3%A9"
    )


def test_model_from_base_query_counts() -> None:
    assert realtime_url("wss://h/v1/realtime?model=m") == "wss://h/v1/realtime?model=m"


def test_a_blank_query_parameter_is_kept() -> None:
    assert realtime_url("wss://h/v1?debug=", model="m") == "wss://h/v1/realtime?model=m&debug="


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "m", "call_id": "c"}, "not both"),
        ({}, "needs a model"),
        ({"query": {"x": "y"}}, "needs a model"),
        ({"model": "m", "query": {"model": "n"}}, "given twice"),
        ({"base": "ftp://h/v1", "model": "m"}, "scheme"),
        ({"base": "wss://user:pw@h/v1", "model": "m"}, "credentials"),
        ({"base": "wss://h/v1#frag", "model": "m"}, "fragment"),
        ({"base": "wss://h/v 1", "model": "m"}, "spaces"),
        ({"base": "wss://h/v1\n", "model": "m"}, "control"),
        ({"base": "wss://[::1/v1", "model": "m"}, "invalid URL"),
        ({"base": b"wss://h", "model": "m"}, "must be a str"),
        ({"model": "m", "query": {"x": 1}}, "strings"),
    ],
)
def test_realtime_url_refuses(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        realtime_url(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "wss://api.openai.com/v1/realtime?model=gpt-realtime",
            (True, "api.openai.com", 443, "/v1/realtime?model=gpt-realtime"),
        ),
        ("ws://localhost:8080", (False, "localhost", 8080, "/")),
        ("ws://LOCALHOST/", (False, "localhost", 80, "/")),
        ("https://h.example/x", (True, "h.example", 443, "/x")),
        ("http://h.example:81/x?", (False, "h.example", 81, "/x")),
        ("wss://[::1]:9000/v1/realtime", (True, "::1", 9000, "/v1/realtime")),
        ("wss://[2001:DB8::1]/", (True, "2001:db8::1", 443, "/")),
        ("ws://127.0.0.1:1/a", (False, "127.0.0.1", 1, "/a")),
        ("wss://bücher.example/p", (True, "xn--bcher-kva.example", 443, "/p")),
        ("wss://h/caf\u00e9?q=\u00e9", (True, "h", 443, "/caf%C3%A9?q=%C3%A9")),
        ("wss://h/a%20b?x=%2F", (True, "h", 443, "/a%20b?x=%2F")),
        ("wss://h?x=1", (True, "h", 443, "/?x=1")),  # an empty path is fine
    ],
)
def test_split_url(url: str, expected: tuple[bool, str, int, str]) -> None:
    assert split_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/",
        "h/path",
        "wss:///path",
        "wss://h:99999/",
        "wss://h:0/",
        "wss://h:/",
        "wss://h:abc/",
        "wss://u@h/",
        "wss://h/#x",
        "wss://h /",
        "wss://[zz::1]/",
        "wss://[v1.fe]/",
        "wss://[::1/",
        "wss://h_!/",
        "wss://-h/",
        "wss://a..b/",
        "wss://" + "\udcff" + "/",
        # spaces and control characters anywhere: urlsplit would quietly drop a tab or a
        # newline, and quote() would encode a space, dialling a path nobody wrote
        "wss://h/pa th",
        "wss://h/a\tb",
        "wss://h/\nv1/realtime",
        "wss://h/x?model=a\x00b",
        "wss://h/\x7f",
    ],
)
def test_split_url_refuses(url: str) -> None:
    with pytest.raises(LocalProtocolError):
        split_url(url)


def test_split_url_takes_only_a_str() -> None:
    with pytest.raises(LocalProtocolError, match="must be a str, not bytes"):
        split_url(b"wss://h/")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://h:99999/v1/realtime?model=m&api-key=SECRET", "'wss://h:99999/v1/realtime?...'"),
        ("wss://h:0/?key=SECRET", "'wss://h:0/?...'"),
        ("wss://h:/?k=SECRET", "'wss://h:/?...'"),
        ("wss://h:abc/x?k=SECRET", "'wss://h:abc/x?...'"),
    ],
)
def test_split_url_errors_leave_the_query_out(url: str, shown: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        split_url(url)
    assert "SECRET" not in str(info.value)
    assert "SECRET" not in repr(info.value)
    assert shown in str(info.value)


def test_redact_url() -> None:
    assert redact_url("wss://h/v1/realtime?model=m&api-key=k") == "wss://h/v1/realtime?..."
    assert redact_url("wss://h:1/v1/realtime") == "wss://h:1/v1/realtime"
    assert redact_url("wss://h/p?") == "wss://h/p?..."
    assert redact_url("wss://h/p#k=1?x") == "wss://h/p"
    assert redact_url("wss://h/p?x#y") == "wss://h/p?..."
    assert redact_url("?api-key=k") == "?..."  # a query or fragment at the very start
    assert redact_url("#k") == ""


def test_host_header() -> None:
    assert host_header("api.openai.com", 443, True) == "api.openai.com"
    assert host_header("h", 443, False) == "h:443"
    assert host_header("h", 80, False) == "h"
    assert host_header("::1", 9000, True) == "[::1]:9000"
    assert host_header("::1", 443, True) == "[::1]"
