// Replays scripted Realtime traces through OpenAI's own JavaScript transport layer,
// @openai/agents-realtime, with no network: OpenAIRealtimeWebSocket gets an in-memory socket
// through its `createWebSocket` hook; OpenAIRealtimeWebRTC gets an in-memory peer connection,
// data channel, microphone and `fetch` for the SDP exchange. Date.now() is a clock the trace
// advances. tests/test_js_conformance.py runs the same traces through rtproto's ClientSession
// and compares what both send and report.
//
//   node replay.mjs < scenarios.json > results.json
//
// Input: a JSON array of scenarios {"name", "transport", "config", "steps"}; "transport" is
// "websocket" (the default), "sip" (the WebSocket sideband of a SIP call) or "webrtc" (the
// data channel opens before the first step),
// "config" the transport's initialSessionConfig, each step one of
//   {"server": EVENT}                       the server sends EVENT (a JSON object)
//   {"advance_ms": N}                        the clock moves on N ms
//   {"call": "sendMessage", "text": T, "trigger": B}
//   {"call": "interrupt"}
//   {"call": "requestResponse", "response": OVERRIDES?}
//   {"call": "sendFunctionCallOutput", "call_id": C, "output": O, "start": B}
//   {"call": "sendMcpResponse", "item_id": I, "approved": B, "reason": R?}
//   {"call": "updateSessionConfig", "config": CONFIG}
// Output: a JSON array, one {"name", "sent", "events", "failure"} per scenario: "sent" holds
// the client messages in order as [step, message] (the step that caused it, -1 for connect),
// "events" the transport events in order as [name, payload] (payloads reduced to what both
// libraries report), "failure" what threw.

import {
  OpenAIRealtimeSIP,
  OpenAIRealtimeWebRTC,
  OpenAIRealtimeWebSocket,
} from '@openai/agents-realtime';

let clock = 1_000_000;
Date.now = () => clock;

class MemorySocket {
  constructor() {
    this.listeners = new Map();
    this.sent = [];
    this.step = -1; // the trace step being run (-1: connecting)
  }
  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(listener);
  }
  removeEventListener(type, listener) {
    const list = this.listeners.get(type) ?? [];
    this.listeners.set(type, list.filter((l) => l !== listener));
  }
  dispatch(type, event) {
    for (const listener of [...(this.listeners.get(type) ?? [])]) listener(event);
  }
  send(text) {
    this.sent.push([this.step, JSON.parse(text)]);
  }
  close() {
    this.readyState = 'closed';
    this.dispatch('close', { code: 1000, reason: '' });
  }
}

// What OpenAIRealtimeWebRTC touches of the browser's WebRTC, in memory: the peer connection
// hands out the one data channel, the "call" answers any offer.
let channel = null;
class MemoryPeerConnection {
  connectionState = 'new';
  createDataChannel() {
    channel = new MemorySocket();
    channel.readyState = 'connecting';
    return channel;
  }
  addTrack() {}
  getSenders() {
    return [];
  }
  async createOffer() {
    return { type: 'offer', sdp: 'v=0\r\n' };
  }
  async setLocalDescription() {}
  async setRemoteDescription() {}
  close() {
    this.connectionState = 'closed';
  }
}
globalThis.RTCPeerConnection = MemoryPeerConnection;
globalThis.fetch = async () =>
  new Response('v=0\r\n', { status: 201, headers: { Location: '/v1/realtime/calls/rtc_1' } });
const microphone = { getAudioTracks: () => [{ enabled: true, stop() {} }] };
const settle = () => new Promise((resolve) => setImmediate(resolve)); // chained promises run

// What each transport event carries that rtproto reports too (names as the JS transport's).
const REPORTED = {
  audio: (e) => ({ response_id: e.responseId, bytes: e.data.byteLength }),
  audio_done: () => ({}),
  audio_interrupted: () => ({}),
  audio_transcript_delta: (e) => ({ item_id: e.itemId, response_id: e.responseId, delta: e.delta }),
  output_text_delta: (e) => ({ item_id: e.itemId, response_id: e.responseId, delta: e.delta }),
  turn_started: (e) => ({ response_id: e.providerData.response.id }),
  turn_done: (e) => ({ response_id: e.response.id, total_tokens: e.response.usage.totalTokens }),
  usage_update: (e) => ({
    input_tokens: e.inputTokens,
    output_tokens: e.outputTokens,
    total_tokens: e.totalTokens,
  }),
  function_call: (e) => ({
    call_id: e.callId,
    name: e.name,
    arguments: e.arguments,
    item_id: e.id,
    response_id: e.responseId,
  }),
  item_update: (e) => ({
    item_id: e.itemId,
    type: e.type,
    status: e.status ?? null,
    texts: e.content ? e.content.map((part) => part.text ?? part.transcript ?? null) : null,
    kinds: e.content ? e.content.map((part) => part.type) : null,
  }),
  item_deleted: (e) => ({ item_id: e.itemId }),
  error: (e) => ({ code: e.error?.error?.code ?? null }),
  mcp_tools_listed: (e) => ({ server_label: e.serverLabel, tools: e.tools.map((t) => t.name) }),
  mcp_approval_request: (e) => ({ item_id: e.itemId, name: e.name }),
  mcp_tool_call_completed: (e) => ({ item_id: e.itemId, output: e.output ?? null }),
};

async function replay(scenario) {
  const webrtc = scenario.transport === 'webrtc';
  let socket = new MemorySocket();
  const socketOptions = { createWebSocket: async () => socket, skipOpenEventListeners: true };
  const transport = webrtc
    ? new OpenAIRealtimeWebRTC({ mediaStream: microphone, audioElement: {} })
    : scenario.transport === 'sip'
      ? new OpenAIRealtimeSIP(socketOptions)
      : new OpenAIRealtimeWebSocket(socketOptions);
  const events = [];
  const calls = new Map();
  const approvals = new Map();
  for (const [name, reduce] of Object.entries(REPORTED)) {
    transport.on(name, (event) => {
      events.push([name, reduce(event)]);
      if (name === 'function_call') calls.set(event.callId, event);
      if (name === 'mcp_approval_request') approvals.set(event.itemId, event);
    });
  }
  let failure = null;
  try {
    const connecting = transport.connect({
      apiKey: 'sk-test',
      model: 'gpt-realtime',
      url: webrtc ? 'http://127.0.0.1:9/v1/realtime/calls' : 'ws://127.0.0.1:9/v1/realtime',
      initialSessionConfig: scenario.config ?? {},
      callId: 'rtc_1', // (the SIP transport's sideband needs the call's id)
    });
    if (webrtc) {
      // connect() resolves on session.updated, which a step sends: open the channel, go on
      connecting.catch((error) => {
        failure = `${error?.name}: ${error?.message}`;
      });
      while (channel === null) await settle();
      socket = channel;
      channel = null;
      await settle();
      socket.readyState = 'open';
      socket.dispatch('open', {});
    } else {
      await connecting;
    }
    for (const [index, step] of scenario.steps.entries()) {
      socket.step = index;
      if ('server' in step) socket.dispatch('message', { data: JSON.stringify(step.server) });
      else if ('advance_ms' in step) clock += step.advance_ms;
      else if (step.call === 'sendMessage') {
        transport.sendMessage(step.text, {}, { triggerResponse: step.trigger ?? true });
      } else if (step.call === 'interrupt') transport.interrupt();
      else if (step.call === 'requestResponse') transport.requestResponse(step.response);
      else if (step.call === 'sendFunctionCallOutput') {
        transport.sendFunctionCallOutput(calls.get(step.call_id), step.output, step.start ?? true);
      } else if (step.call === 'sendMcpResponse') {
        transport.sendMcpResponse(approvals.get(step.item_id), step.approved, step.reason);
      } else if (step.call === 'updateSessionConfig') transport.updateSessionConfig(step.config);
      else throw new Error(`unknown step ${JSON.stringify(step)}`);
      await settle();
    }
    transport.close();
  } catch (error) {
    failure = `${error?.name}: ${error?.message}`;
  }
  return { name: scenario.name, sent: socket.sent, events, failure };
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const scenario of JSON.parse(input)) results.push(await replay(scenario));
process.stdout.write(`${JSON.stringify(results)}\n`);
