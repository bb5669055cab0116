"""The Python client generated from openapi/openapi.json, used unedited against a running
service: create a preset, start a run (202), wait for it through sessions_status, read the
committed session, continue it with run/wait, retry a run with the same Idempotency-Key,
and fire an async subagent's outcome.

Usage: generated_client.py BASE_URL TOKEN (the generated package on PYTHONPATH).
"""

import sys
import time
import uuid

from agent_runtime_client import AuthenticatedClient
from agent_runtime_client.api.conversations import (
    conversations_fire,
    conversations_mailbox,
    conversations_run,
    conversations_run_wait,
)
from agent_runtime_client.api.presets import presets_create
from agent_runtime_client.api.sessions import sessions_get, sessions_status
from agent_runtime_client.models import (
    ApiError,
    FireRequest,
    InputPartTextInput,
    InputPartTextInputType,
    ModelSettings,
    PresetCreateRequest,
    RunAccepted,
    RunRequest,
    RunResult,
    SubagentRef,
    Subagents,
)


def check(condition, what):
    if not condition:
        raise SystemExit(f"generated client: {what}")


def text(value):
    return [InputPartTextInput(text=value, type_=InputPartTextInputType.TEXT)]


def wait_finished(client, session_id):
    for _ in range(600):
        status = sessions_status.sync(client=client, session_id=session_id)
        check(not isinstance(status, ApiError), f"status: {status}")
        if status.status != "executing":
            return status.status
        time.sleep(0.05)
    raise SystemExit("generated client: the run did not finish")


def main(base, token):
    client = AuthenticatedClient(base_url=f"{base}/api", token=token)
    suffix = uuid.uuid4().hex[:8]
    worker, lead = f"worker-{suffix}", f"lead-{suffix}"

    created = presets_create.sync(
        client=client,
        body=PresetCreateRequest(
            preset_id=worker, name="Worker", model=ModelSettings(name="test:echo")
        ),
    )
    check(not isinstance(created, ApiError), f"presets_create: {created}")
    check(created.preset_id == worker, "the preset echoes its id")

    accepted = conversations_run.sync(
        client=client,
        body=RunRequest(preset_id=worker, input_=text("hello")),
    )
    check(isinstance(accepted, RunAccepted), f"conversations_run: {accepted!r}")
    check(wait_finished(client, accepted.session_id) == "committed", "the run committed")
    session = sessions_get.sync(client=client, session_id=accepted.session_id)
    check(not isinstance(session, ApiError), f"sessions_get: {session}")
    check(session.status == "committed", f"session status {session.status}")
    said = [m.text for m in session.display_messages if getattr(m, "kind", None) == "assistant_text"]
    check(said == ["echo: hello"], f"display messages {said}")

    waited = conversations_run_wait.sync(
        client=client,
        body=RunRequest(conversation_id=accepted.conversation_id, input_=text("again")),
    )
    check(isinstance(waited, RunResult), f"conversations_run_wait: {waited!r}")
    check(waited.status == "committed", f"run/wait status {waited.status}")
    check(waited.final_message == "echo: again", f"run/wait final message {waited.final_message!r}")

    # A retried run (same Idempotency-Key, same body) is the same run; another body is 409.
    key = f"retry-{uuid.uuid4()}"
    retried = [
        conversations_run.sync(
            client=client,
            body=RunRequest(conversation_id=accepted.conversation_id, input_=text("retry me")),
            idempotency_key=key,
        )
        for _ in range(2)
    ]
    check(all(isinstance(r, RunAccepted) for r in retried), f"retried runs: {retried!r}")
    check(retried[0].session_id == retried[1].session_id, f"a retry started another run: {retried!r}")
    wait_finished(client, retried[0].session_id)
    other = conversations_run.sync(
        client=client,
        body=RunRequest(conversation_id=accepted.conversation_id, input_=text("other")),
        idempotency_key=key,
    )
    check(
        isinstance(other, ApiError) and other.error == "idempotency_conflict",
        f"another body with a used key: {other!r}",
    )

    busy = conversations_run.sync(
        client=client,
        body=RunRequest(conversation_id="no-such-conversation", input_=text("x")),
    )
    check(isinstance(busy, ApiError) and busy.error == "not_found", f"unknown id: {busy!r}")

    # An async subagent's outcome through the mailbox and fire.
    presets_create.sync(
        client=client,
        body=PresetCreateRequest(
            preset_id=lead,
            name="Lead",
            model=ModelSettings(name="test:call:async_delegate"),
            subagents=Subagents(
                async_enabled=True,
                include_builtin=False,
                refs=[SubagentRef(preset_id=worker, name="worker", description="echoes")],
            ),
        ),
    )
    dispatched = conversations_run.sync(
        client=client,
        body=RunRequest(
            preset_id=lead,
            input_=text('{"subagent": "worker", "task": "find it"}'),
        ),
    )
    check(isinstance(dispatched, RunAccepted), f"dispatch: {dispatched!r}")
    wait_finished(client, dispatched.session_id)
    conversation = dispatched.conversation_id
    for _ in range(600):
        mailbox = conversations_mailbox.sync(client=client, conversation_id=conversation)
        if mailbox.pending_count == 1:
            break
        time.sleep(0.05)
    check(mailbox.pending_count == 1, "the subagent's outcome waits in the mailbox")
    check(mailbox.messages[0].source_type == "subagent_result", "a result")
    fired = conversations_fire.sync(
        client=client, conversation_id=conversation, body=FireRequest(input_=text("go on"))
    )
    check(isinstance(fired, RunAccepted), f"conversations_fire: {fired!r}")
    wait_finished(client, fired.session_id)
    again = conversations_fire.sync(client=client, conversation_id=conversation, body=FireRequest())
    check(isinstance(again, ApiError) and again.error == "mailbox_empty", f"second fire: {again!r}")
    print("generated client: preset, run, run/wait, retry, session, mailbox and fire all work")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
