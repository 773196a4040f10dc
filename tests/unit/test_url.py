import pytest

from heron.database.url import UrlError, normalize_url, psycopg_conninfo, redact_text, redact_url


@pytest.mark.parametrize(
    "raw",
    ["postgres://u:p@h:5432/d", "postgresql://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"],
)
def test_usual_schemes_become_the_psycopg_driver(raw):
    url = normalize_url(raw)
    assert url.drivername == "postgresql+psycopg"
    assert psycopg_conninfo(url) == "postgresql://u:p@h:5432/d"


def test_unix_socket_urls_are_kept():
    url = normalize_url("postgresql://postgres:@/heron?host=/tmp/x")
    assert url.query["host"] == "/tmp/x"
    assert url.database == "heron"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://u@h/d", "unsupported scheme"),
        ("not a url", "not a database URL"),
        ("postgresql://u:p@h:5432", "names no database"),
    ],
)
def test_bad_urls_are_explained(raw, message):
    with pytest.raises(UrlError, match=message):
        normalize_url(raw)


def test_redaction_hides_passwords_even_in_bad_urls():
    assert redact_url("postgresql://u:secret@h/d") == "postgresql://u:***@h/d"
    assert "secret" not in redact_url("weird://u:secret@h")
    assert redact_text("no credentials here") == "no credentials here"


def test_bad_url_error_does_not_leak_password():
    with pytest.raises(UrlError) as caught:
        normalize_url("postgresql://u:secret@h:5432")
    assert "secret" not in str(caught.value)
