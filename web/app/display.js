// Builds a run's display messages from its events, by the same rules as the server's
// transcript (src/core/execution/transcript.rs), so a live run looks exactly like the
// committed turn that replaces it when the run ends:
// - text and thinking deltas append to the open block of their (agent, kind); content_done
//   replaces the block's text with the whole text and closes it; message_end closes every
//   open block of its agent;
// - a tool call is an entry from tool_call_start on: args_delta appends to its args,
//   tool_call_result sets result and status, tool_call_end sets the final status;
// - subagent_started opens a subagent entry, subagent_completed fills result and status;
// - steering_injected is a user entry, warning a warning entry; run_failed adds an error.

export class DisplayBuilder {
  constructor() {
    /** @type {any[]} */
    this.messages = [];
    /** open text/thinking block per `${agent}\u0000${kind}`: index into messages */
    this.open = new Map();
    /** tool calls by id: index */
    this.calls = new Map();
    /** subagent entries by the subagent's agent id: index */
    this.subagents = new Map();
  }

  /** Entries are replaced, never mutated, so views can compare them by identity. */
  replace(index, patch) {
    this.messages[index] = { ...this.messages[index], ...patch };
  }

  pushUser(text) {
    if (text) this.messages.push({ kind: 'user', text });
  }

  /** @param {{event_type: string, agent_id: string, payload: any}} event */
  apply(event) {
    const agent = event.agent_id || 'main';
    const p = event.payload || {};
    switch (event.event_type) {
      case 'content_delta': {
        const i = this.block(agent, p.kind);
        this.replace(i, { text: this.messages[i].text + (p.delta || '') });
        break;
      }
      case 'content_done': {
        const i = this.block(agent, p.kind);
        this.replace(i, { text: p.text ?? this.messages[i].text });
        this.open.delete(`${agent}\u0000${p.kind}`);
        break;
      }
      case 'message_end':
        for (const key of [...this.open.keys()]) if (key.startsWith(`${agent}\u0000`)) this.open.delete(key);
        break;
      case 'tool_call_start':
        this.calls.set(p.tool_call_id, this.messages.length);
        this.messages.push({
          kind: 'tool_call',
          agent_id: agent,
          tool_call_id: p.tool_call_id,
          tool_name: p.tool_name,
          args: '',
          status: 'pending',
        });
        break;
      case 'tool_call_args_delta': {
        const i = this.calls.get(p.tool_call_id);
        if (i != null) this.replace(i, { args: this.messages[i].args + (p.delta || '') });
        break;
      }
      case 'tool_call_result': {
        const i = this.calls.get(p.tool_call_id);
        if (i != null) this.replace(i, { result: p.output, status: p.is_error ? 'error' : 'success' });
        break;
      }
      case 'tool_call_end': {
        const i = this.calls.get(p.tool_call_id);
        if (i != null) this.replace(i, { status: p.status });
        break;
      }
      case 'subagent_started':
        this.subagents.set(p.subagent_agent_id, this.messages.length);
        this.messages.push({
          kind: 'subagent',
          agent_id: p.subagent_agent_id,
          subagent_name: p.subagent_name,
          status: 'pending',
        });
        break;
      case 'subagent_completed': {
        const i = this.subagents.get(p.subagent_agent_id);
        if (i != null) this.replace(i, { result: p.result, status: p.status });
        break;
      }
      case 'steering_injected':
        this.messages.push({ kind: 'user', text: p.text, steered: true });
        break;
      case 'warning':
        this.messages.push({ kind: 'warning', code: p.code, message: p.message });
        break;
      case 'run_failed':
        this.messages.push({ kind: 'error', code: p.code, message: p.message });
        break;
      default:
        break; // run_started, usage, compaction, …: not transcript entries
    }
  }

  /** The open block of this agent and kind, opened at the end when there is none. */
  block(agent, kind) {
    const key = `${agent}\u0000${kind}`;
    const found = this.open.get(key);
    if (found != null) return found;
    const index = this.messages.length;
    this.messages.push({ kind: kind === 'thinking' ? 'thinking' : 'assistant_text', agent_id: agent, text: '' });
    this.open.set(key, index);
    return index;
  }
}

/**
 * Nests display messages for rendering: a subagent's entries (agent id `name`, or
 * `parent/name` two levels down) go inside its most recent subagent block.
 * @returns {{message: any, children: any[]}[]}
 */
export function nest(messages) {
  const root = [];
  const blocks = new Map(); // agent id -> node of its latest subagent entry
  for (const message of messages) {
    const agent = message.agent_id;
    if (message.kind === 'subagent') {
      const parentAgent = agent.includes('/') ? agent.slice(0, agent.lastIndexOf('/')) : 'main';
      const node = { message, children: [] };
      (blocks.get(parentAgent)?.children || root).push(node);
      blocks.set(agent, node);
    } else {
      const container = agent && agent !== 'main' ? blocks.get(agent)?.children : null;
      (container || root).push({ message, children: [] });
    }
  }
  return root;
}
