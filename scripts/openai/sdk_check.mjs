// The official `openai` npm package against the service's /v1 surface, unchanged.
//
//   node scripts/openai/sdk_check.mjs BASE_URL TOKEN MODEL
//
// The same checks as sdk_check.py: models, a whole and a streamed completion with usage,
// a three-turn chat continuing one conversation, an edit that forks, an image.
import OpenAI from "openai";

const [BASE, TOKEN, MODEL] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: TOKEN });
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
let checks = 0;

function check(cond, what) {
  if (!cond) {
    console.error(`openai npm SDK: ${what}`);
    process.exit(1);
  }
  checks += 1;
}

async function api(path) {
  const resp = await fetch(`${BASE}${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return resp.json();
}

async function complete(messages) {
  const { data, response } = await client.chat.completions
    .create({ model: MODEL, messages })
    .withResponse();
  return [data, response.headers.get("x-conversation-id")];
}

const models = [];
for await (const model of client.models.list()) models.push(model.id);
check(models.includes(MODEL), `${MODEL} not in the models ${models}`);

const first = [{ role: "user", content: "js one" }];
let [done, conversation] = await complete(first);
check(done.choices[0].message.content === "echo: js one", `whole answer: ${JSON.stringify(done)}`);
check(done.usage.total_tokens > 0, "usage");

const second = [...first, { role: "assistant", content: "echo: js one" }, { role: "user", content: "js two" }];
let [, again] = await complete(second);
check(again === conversation, "the second turn continues the conversation");

const third = [...second, { role: "assistant", content: "echo: js two" }, { role: "user", content: "js three" }];
const stream = await client.chat.completions.create({
  model: MODEL,
  messages: third,
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let usage = null;
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
check(text === "echo: js three", `streamed answer: ${JSON.stringify(text)}`);
check(usage && usage.prompt_tokens > 0, "streamed usage");
const sessions = (await api(`/api/conversations/${conversation}/sessions`)).sessions;
check(sessions.length === 3, `three turns, one conversation: ${sessions.length} sessions`);

const edited = [...first, { role: "assistant", content: "echo: js one" }, { role: "user", content: "js two, edited" }];
let forked;
[done, forked] = await complete(edited);
check(done.choices[0].message.content === "echo: js two, edited", "edited answer");
check(forked !== conversation, "an edited earlier message forks");

const image = [
  {
    role: "user",
    content: [
      { type: "text", text: "js look" },
      { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } },
    ],
  },
];
[done] = await complete(image);
const answer = done.choices[0].message.content;
check(answer.startsWith("echo: js look") && answer.includes("image/png"), `image answer: ${answer}`);

try {
  await client.chat.completions.create({ model: "no-such-preset", messages: first });
  check(false, "an unknown model is refused");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.code === "model_not_found", `unknown model error: ${e}`);
}

console.log(`openai npm SDK: ${checks} checks passed`);
