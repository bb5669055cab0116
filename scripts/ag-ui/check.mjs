// The official AG-UI client (@ag-ui/client's HttpAgent, which verifies the event sequence
// as it applies it) drives a conversation through POST /api/ag-ui/{preset_id}, unchanged.
//
//   node scripts/ag-ui/check.mjs BASE_URL TOKEN PRESET
//
// PRESET runs the built-in test:call:ls model with the core toolset: it calls `ls` with
// the user's text as arguments, then answers with the result. Two turns on one thread
// continue one conversation (checked through our API).
import { HttpAgent } from "@ag-ui/client";

const [BASE, TOKEN, PRESET] = process.argv.slice(2);
let checks = 0;
function check(cond, what) {
  if (!cond) {
    console.error(`AG-UI client: ${what}`);
    process.exit(1);
  }
  checks += 1;
}

const agent = new HttpAgent({
  url: `${BASE}/api/ag-ui/${PRESET}`,
  headers: { Authorization: `Bearer ${TOKEN}` },
  threadId: `thread-${Date.now()}`,
});

async function turn(id, text) {
  agent.addMessage({ id, role: "user", content: text });
  const seen = [];
  let finished;
  await agent.runAgent(
    { runId: `run-${id}` },
    {
      onEvent: ({ event }) => {
        seen.push(event.type);
      },
      onRunFinishedEvent: ({ event }) => {
        finished = event;
      },
    },
  );
  return { types: seen.filter((t) => t !== "CUSTOM"), finished };
}

const first = await turn("u1", JSON.stringify({ path: "." }));
const expected = [
  "RUN_STARTED",
  "TOOL_CALL_START",
  "TOOL_CALL_ARGS",
  "TOOL_CALL_END",
  "TOOL_CALL_RESULT",
  "TEXT_MESSAGE_START",
  "TEXT_MESSAGE_CONTENT",
  "TEXT_MESSAGE_END",
  "RUN_FINISHED",
];
const squeezed = first.types.filter((t, i, all) => t !== all[i - 1]);
check(JSON.stringify(squeezed) === JSON.stringify(expected), `event sequence: ${squeezed.join(", ")}`);
check(first.finished.threadId === agent.threadId, "RUN_FINISHED names the client's thread");
check(first.finished.runId === "run-u1", "RUN_FINISHED names the client's run");
const conversation = first.finished.result.conversation_id;
check(typeof conversation === "string" && conversation.length > 0, "the result names our conversation");

const roles = agent.messages.map((m) => m.role);
check(roles.includes("tool"), `the tool result is a message: ${roles}`);
const assistant = agent.messages.find((m) => m.role === "assistant" && m.toolCalls?.length);
check(assistant?.toolCalls[0].function.name === "ls", "the assistant message carries the ls call");

const second = await turn("u2", JSON.stringify({ path: "." }));
check(second.finished.result.conversation_id === conversation, "the thread's second turn continues it");
const resp = await fetch(`${BASE}/api/conversations/${conversation}/sessions`, {
  headers: { Authorization: `Bearer ${TOKEN}` },
});
const sessions = (await resp.json()).sessions;
check(sessions.length === 2, `two turns, one conversation: ${sessions.length} sessions`);

console.log(`AG-UI client: ${checks} checks passed`);
