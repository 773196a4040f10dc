"""The public names are a promise: changing them is a breaking change."""

import heron


def test_public_api_is_pinned():
    assert sorted(heron.__all__) == sorted(
        [
            "Config",
            "ConfigError",
            "DatabaseConnection",
            "Event",
            "EventProcessor",
            "EventStatus",
            "HandlerRegistry",
            "HeronError",
            "PermanentError",
            "WorkerPool",
            "__version__",
            "enqueue",
            "get_session",
            "init_db",
        ]
    )
    for name in heron.__all__:
        assert getattr(heron, name) is not None


def test_every_heron_error_shares_one_root():
    from heron import errors

    for value in vars(errors).values():
        if (
            isinstance(value, type)
            and issubclass(value, Exception)
            and value.__module__ == errors.__name__
        ):
            assert issubclass(value, heron.HeronError)
