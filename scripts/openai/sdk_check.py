"""The official `openai` Python SDK against the service's /v1 surface, unchanged.

    python3 scripts/openai/sdk_check.py BASE_URL TOKEN MODEL

Checks: the model list, a whole and a streamed completion (with usage), a three-turn chat
that continues one conversation (checked through our API: one conversation, three
sessions), an edited earlier message that forks, and an image. MODEL is a preset on the
built-in test:echo model, which answers "echo: <last user text>".
"""

import json
import sys
import urllib.request

import openai

BASE, TOKEN, MODEL = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=f"{BASE}/v1", api_key=TOKEN)
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
checks = 0


def check(cond, what):
    global checks
    if not cond:
        sys.exit(f"openai python SDK: {what}")
    checks += 1


def api(path):
    req = urllib.request.Request(f"{BASE}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


def complete(messages):
    """A whole completion and the conversation it went to."""
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    return raw.parse(), raw.headers["x-conversation-id"]


models = [m.id for m in client.models.list()]
check(MODEL in models, f"{MODEL} not in the models {models}")

first = [{"role": "user", "content": "py one"}]
done, conversation = complete(first)
check(done.choices[0].message.content == "echo: py one", f"whole answer: {done}")
check(done.usage.total_tokens > 0, f"usage: {done.usage}")

second = first + [{"role": "assistant", "content": "echo: py one"}, {"role": "user", "content": "py two"}]
done, again = complete(second)
check(again == conversation, "the second turn continues the conversation")

third = second + [{"role": "assistant", "content": "echo: py two"}, {"role": "user", "content": "py three"}]
stream = client.chat.completions.create(model=MODEL, messages=third, stream=True,
                                        stream_options={"include_usage": True})
text, usage = "", None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage
check(text == "echo: py three", f"streamed answer: {text!r}")
check(usage is not None and usage.prompt_tokens > 0, f"streamed usage: {usage}")
sessions = api(f"/api/conversations/{conversation}/sessions")["sessions"]
check(len(sessions) == 3, f"three turns, one conversation: {len(sessions)} sessions")

edited = first + [{"role": "assistant", "content": "echo: py one"}, {"role": "user", "content": "py two, edited"}]
done, forked = complete(edited)
check(done.choices[0].message.content == "echo: py two, edited", f"edited answer: {done}")
check(forked != conversation, "an edited earlier message forks")
check(len(api(f"/api/conversations/{conversation}/sessions")["sessions"]) == 3, "the original is untouched")

image = [{"role": "user", "content": [
    {"type": "text", "text": "py look"},
    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
done, _ = complete(image)
answer = done.choices[0].message.content
check(answer.startswith("echo: py look") and "image/png" in answer, f"image answer: {answer}")

try:
    client.chat.completions.create(model="no-such-preset", messages=first)
    check(False, "an unknown model is refused")
except openai.NotFoundError as e:
    check(e.code == "model_not_found", f"unknown model error: {e}")

print(f"openai python SDK {openai.__version__}: {checks} checks passed")
