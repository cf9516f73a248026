"""Fixtures: a fresh Mission Control instance writing to a temporary store."""

import pytest

import mission_control as mc


@pytest.fixture
def control(tmp_path):
    c = mc.init(store=tmp_path / "store", service="test-agent", tenant="acme")
    yield c
    if not c.is_shut_down:
        c.shutdown()


def rows(table):
    """A pyarrow table as a list of dicts (times as ns since the epoch: Python's datetime stops
    at microseconds)."""
    import pyarrow as pa

    if "time" in table.column_names:
        i = table.column_names.index("time")
        table = table.set_column(i, "time", table.column(i).cast(pa.int64()))
    return table.to_pylist()
