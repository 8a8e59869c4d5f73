from tests.streaming.conftest import committed  # noqa: F401 (a fixture of the cluster tests)
