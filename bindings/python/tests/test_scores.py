"""Scores and feedback from Python: on a thread, on a span, and late by thread id from another
process after the thread ended; checked values; comments are content."""

import subprocess
import sys

import pytest

import mission_control as mc
from conftest import rows


def scores_of(control, thread_id):
    return {r["name"]: r for r in rows(control.query(thread_id=thread_id, kind="score"))}


def test_thread_and_span_scores_round_trip(control):
    with control.thread(agent="support-bot") as thread:
        with thread.llm_call(model="gpt-4o-mini", provider="openai") as call:
            call.record_usage(input_tokens=10, output_tokens=2)
            assert call.score("correctness", 1, label="pass", source="rule") is True
        assert thread.score("helpfulness", 0.25, label="partly", comment="missed the policy", source="llm")
    got = scores_of(control, thread.id)
    assert set(got) == {"correctness", "helpfulness"}
    correctness, helpfulness = got["correctness"], got["helpfulness"]
    assert correctness["span_id"] == int(call.span_id, 16)
    assert correctness["gen_ai_evaluation_score_value"] == 1.0
    assert (correctness["gen_ai_evaluation_score_label"], correctness["score_source"]) == ("pass", "rule")
    assert helpfulness["span_id"] == int(thread.root.span_id, 16)
    assert helpfulness["gen_ai_evaluation_score_value"] == 0.25
    assert helpfulness["score_source"] == "llm"
    # A comment is content: omitted unless the tenant captures content.
    assert helpfulness["gen_ai_evaluation_explanation"] == "[content omitted]"
    assert helpfulness["gen_ai_agent_name"] == "support-bot"


@pytest.mark.parametrize(
    "args, message",
    [
        (("helpfulness", float("nan")), "not a finite number"),
        (("helpfulness", float("inf")), "not a finite number"),
        (("", 1.0), "name is empty"),
    ],
)
def test_bad_scores_are_value_errors(control, args, message):
    with control.thread() as thread:
        with pytest.raises(ValueError, match=message):
            thread.score(*args)
        with pytest.raises(ValueError, match="unknown score source"):
            thread.score("helpfulness", 1.0, source="robot")
    with pytest.raises(ValueError, match="thread_id"):
        control.score_thread("not-a-thread", "thumbs", 1.0)


def test_a_late_score_from_another_process_after_the_thread_ended(tmp_path):
    store = tmp_path / "store"
    control = mc.init(store=store, service="support-bot", tenant="acme", capture_content=True)
    with control.thread() as thread:
        pass
    thread_id = thread.id
    control.shutdown()
    # Another process, knowing only the id: a user's thumbs-down an hour later.
    script = (
        "import mission_control as mc, sys\n"
        "c = mc.init(store=sys.argv[1], service='feedback-api', tenant='acme', capture_content=True)\n"
        "assert c.score_thread(sys.argv[2], 'thumbs', -1, comment='wrong order number', agent='support-bot')\n"
        "c.shutdown()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(store), thread_id], check=True)
    reader = mc.init(store=store, service="reader", tenant="acme")
    try:
        thumbs = scores_of(reader, thread_id)["thumbs"]
    finally:
        reader.shutdown()
    assert thumbs["gen_ai_evaluation_score_value"] == -1.0
    assert thumbs["span_id"] is None, "the thread as a whole"
    assert thumbs["gen_ai_agent_name"] == "support-bot"
    assert thumbs["score_source"] == "human"
    assert thumbs["gen_ai_evaluation_explanation"] == "wrong order number"
