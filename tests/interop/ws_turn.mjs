// One text turn through OpenAI's own JavaScript client, the @openai/agents-realtime WebSocket
// transport (OpenAIRealtimeWebSocket), against a Realtime endpoint (the rtproto emulator).
//
//   node ws_turn.mjs ws://127.0.0.1:PORT/v1/realtime [--model M] [--instructions TEXT]
//                    [--voice V] [--message TEXT] [--timeout SECONDS]
//
// connect() opens the socket (Authorization: Bearer sk-test, through the package's Node shim,
// which uses `ws`) and sends session.update from initialSessionConfig; sendMessage() sends
// conversation.item.create and then response.create. The transport's events are collected
// until turn_done, then the socket is closed and ONE JSON line goes to stdout:
//
//   {"connected":true,"model":...,"audio_chunks":N,"audio_bytes":B,"transcript":"...",
//    "turn_done":{"status":"completed","response_id":...,"usage":{...}},
//    "session":{...},"events":{"session.created":1,...},"schema_rejects":[],"errors":[]}
//
// "session" is the last session.updated the client parsed. "schema_rejects" lists server events
// that the package's own event schema (realtimeServerEventSchema) refuses: the transport drops
// those silently, so they are checked here explicitly. "errors" gathers the transport's
// `error` events (server error events and socket errors). Exit 0 after a completed exchange,
// 1 (with a message on stderr, and the JSON line so far on stdout) on timeout or error,
// 2 on bad usage.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { OpenAIRealtimeWebSocket } from '@openai/agents-realtime';

const USAGE =
  'usage: node ws_turn.mjs WS_URL [--model M] [--instructions TEXT] [--voice V] ' +
  '[--message TEXT] [--timeout SECONDS]';

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      model: { type: 'string', default: 'gpt-realtime' },
      instructions: { type: 'string' },
      voice: { type: 'string' },
      message: { type: 'string', default: 'Hello from Node' },
      timeout: { type: 'string', default: '15' },
    },
  });
} catch (error) {
  console.error(`ws_turn: ${error.message}\n${USAGE}`);
  process.exit(2);
}
const [base] = args.positionals;
const timeoutSeconds = Number(args.values.timeout);
if (args.positionals.length !== 1 || !/^wss?:\/\//.test(base) || !(timeoutSeconds > 0)) {
  console.error(USAGE);
  process.exit(2);
}
const model = args.values.model;
// The transport appends ?model= only to its default api.openai.com URL: a given url is used
// as is, so the model goes into it here (and into session.update through the transport).
const target = new URL(base);
if (!target.searchParams.has('model')) target.searchParams.set('model', model);
const url = target.toString();

// The package's own server-event schema, for the explicit check. It is not exported (the
// package's "exports" map hides dist/), so it is loaded next to the resolved entry point
// (dist/index.mjs imports the same file: one module instance).
const entry = import.meta.resolve('@openai/agents-realtime');
const { realtimeServerEventSchema } = await import(new URL('./openaiRealtimeEvents.mjs', entry));
const packageJson = JSON.parse(readFileSync(new URL('../package.json', entry), 'utf8'));

const summary = {
  client: `@openai/agents-realtime@${packageJson.version}`,
  node: process.version,
  url,
  connected: false,
  model: null,
  audio_chunks: 0,
  audio_bytes: 0,
  audio_done: false,
  transcript: '',
  turn_done: null,
  session: null,
  events: {},
  schema_rejects: [],
  errors: [],
};

function describe(error) {
  if (error === null || error === undefined) return String(error);
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  if (typeof error === 'object' && 'message' in error && 'type' in error) {
    return `${error.type}: ${error.message}`; // an ErrorEvent from ws
  }
  try {
    return JSON.parse(JSON.stringify(error));
  } catch {
    return String(error);
  }
}

let finished = false;
function finish(code, message) {
  if (finished) return; // the first outcome wins (a timeout, then the close it causes)
  finished = true;
  if (message) console.error(`ws_turn: ${message}`);
  process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(code));
}

const transport = new OpenAIRealtimeWebSocket({ model });

transport.on('*', (raw) => {
  const kind = typeof raw?.type === 'string' ? raw.type : '?';
  summary.events[kind] = (summary.events[kind] ?? 0) + 1;
  const parsed = realtimeServerEventSchema.safeParse(raw);
  if (!parsed.success) {
    summary.schema_rejects.push({
      type: kind,
      issues: parsed.error.issues.slice(0, 5).map((i) => ({
        path: i.path.join('.'),
        code: i.code,
        message: i.message,
      })),
      event: raw,
    });
  }
});
transport.on('session.created', (event) => {
  summary.model = event.session?.model ?? null;
});
transport.on('session.updated', (event) => {
  summary.session = event.session;
});
transport.on('error', (event) => {
  // Server error events arrive as {type:'error', error:<the parsed event>}; socket and
  // internal failures as {type:'error', error:<Error or ErrorEvent>}.
  const inner = event?.error;
  const serverEvent =
    inner !== null &&
    typeof inner === 'object' &&
    Object.getPrototypeOf(inner) === Object.prototype &&
    inner.type === 'error';
  summary.errors.push(serverEvent ? inner.error : describe(inner));
});
let lastResponse = null;
transport.on('response.done', (event) => {
  lastResponse = event.response;
});
transport.on('audio', (event) => {
  summary.audio_chunks += 1;
  summary.audio_bytes += event.data.byteLength;
});
transport.on('audio_done', () => {
  summary.audio_done = true;
});
transport.on('audio_transcript_delta', (event) => {
  summary.transcript += event.delta;
});

const turnDone = new Promise((resolve) => {
  transport.on('turn_done', resolve);
});
const disconnected = new Promise((resolve) => {
  transport.on('disconnected', resolve);
});

const timer = setTimeout(() => {
  try {
    transport.close();
  } catch {
    // closing is best effort here
  }
  summary.errors.push(`timed out after ${timeoutSeconds} s`);
  finish(1, `timed out after ${timeoutSeconds} s`);
}, timeoutSeconds * 1000);

try {
  const initialSessionConfig = {};
  if (args.values.instructions !== undefined) {
    initialSessionConfig.instructions = args.values.instructions;
  }
  if (args.values.voice !== undefined) {
    initialSessionConfig.audio = { output: { voice: args.values.voice } };
  }
  await transport.connect({ url, apiKey: 'sk-test', model, initialSessionConfig });
  summary.connected = transport.status === 'connected';
  transport.sendMessage(args.values.message, {});
  const done = await Promise.race([
    turnDone,
    disconnected.then(() => {
      throw new Error('the connection closed before turn_done');
    }),
  ]);
  // turn_done keeps only the response's id, output and usage: the status comes from the
  // response.done event the transport parsed just before it.
  summary.turn_done = {
    response_id: done.response.id,
    status: lastResponse?.id === done.response.id ? lastResponse.status : null,
    output_items: done.response.output.length,
    usage: done.response.usage,
  };
  transport.close();
  clearTimeout(timer);
  finish(0);
} catch (error) {
  clearTimeout(timer);
  try {
    transport.close();
  } catch {
    // closing is best effort here
  }
  summary.errors.push(describe(error));
  finish(1, `failed: ${JSON.stringify(describe(error))}`);
}
