"""Integrations with agent frameworks, each an optional extra imported only when used:

* ``mission_control.integrations.openai_agents`` — a tracing processor for the OpenAI Agents
  SDK (``pip install openai-agents``).
* ``mission_control.integrations.langchain`` — a callback handler for LangChain and LangGraph
  (``pip install langchain-core``).

Importing ``mission_control`` imports none of them.
"""
