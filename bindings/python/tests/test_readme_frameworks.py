"""The README's "With your agent framework" table, row by row: its install line names this
distribution with the row's extra, and its two lines, run as written, make a call through the
stack's official client land as an LLM call with tokens and cost (against fake_llm.py).

A row is matched to its driver below by the extra it installs; a row without a driver fails, so
every row the README shows is tested."""

import re
from pathlib import Path

import pytest

import mission_control as mc
from conftest import rows
from fake_llm import FakeLLM

README = Path(__file__).resolve().parents[3] / "README.md"
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]


def framework_rows():
    """(stack, extra, install command, the two lines) for each row of the README's table."""
    text = README.read_text()
    section = text.split("## With your agent framework", 1)[1].split("\n## ", 1)[0]
    found = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] == "Stack" or set(cells[0]) <= set("-: "):
            continue
        install = re.findall(r"`([^`]+)`", cells[1])
        extra = re.findall(r"\[([\w-]+)\]", cells[1])
        found.append((cells[0], extra[0] if extra else "", install, re.findall(r"`([^`]+)`", cells[2])))
    return found


def drive_openai(server):
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    return ("openai", "gpt-4o", 812, 64, (300 * 2.50 + 512 * 1.25 + 64 * 10.00) / 1e6)


def drive_anthropic(server):
    import anthropic

    client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0)
    client.messages.create(model="claude-sonnet-4", max_tokens=100, messages=MESSAGES)
    return ("anthropic", "claude-sonnet-4", 3100, 50,
            (100 * 3.00 + 2000 * 0.30 + 1000 * 3.75 + 50 * 15.00) / 1e6)


DRIVERS = {"openai": drive_openai, "anthropic": drive_anthropic}
UNINSTRUMENT = {"openai": mc.uninstrument_openai, "anthropic": mc.uninstrument_anthropic}


def test_the_table_lists_the_stacks():
    extras = [extra for _, extra, _, _ in framework_rows()]
    assert {"openai", "anthropic"} <= set(extras), extras


@pytest.mark.parametrize("row", framework_rows(), ids=lambda r: r[1] or r[0])
def test_each_rows_two_lines_record_a_call(row, tmp_path, monkeypatch):
    stack, extra, install, lines = row
    assert install == [f"pip install '{mc.DISTRIBUTION}[{extra}]'"], stack
    assert len(lines) == 2, f"{stack}: two lines, not {lines}"
    driver = DRIVERS.get(extra)
    assert driver is not None, f"the README's row {stack!r} has no driver in this test"
    pytest.importorskip(extra)
    monkeypatch.chdir(tmp_path)  # mc.init's default store is ./mission-data
    server = FakeLLM()
    namespace = {}
    try:
        exec("import mission_control as mc\n" + "\n".join(lines), namespace)
        control = namespace["control"]
        provider, model, input_tokens, output_tokens, cost = driver(server)
        (call,) = rows(control.query(kind="llm_call"))
    finally:
        UNINSTRUMENT[extra]()
        if "control" in namespace and not namespace["control"].is_shut_down:
            namespace["control"].shutdown()
        server.close()
    assert (call["gen_ai_provider_name"], call["gen_ai_request_model"]) == (provider, model)
    assert (call["gen_ai_usage_input_tokens"], call["gen_ai_usage_output_tokens"]) == (input_tokens, output_tokens)
    assert call["gen_ai_usage_cost"] == pytest.approx(cost, rel=1e-12, abs=0)
    assert (tmp_path / "mission-data").is_dir()
