// Replays scripted Twilio call traces through the Agents SDK's own Twilio bridge,
// TwilioRealtimeTransportLayer (@openai/agents-extensions), with no network: the Twilio side
// is an in-memory socket that records what is sent to it and delivers what the trace says
// Twilio sends; the OpenAI side is an in-memory socket handed over by the transport's
// `createWebSocket` hook. Date.now(), setTimeout() and clearTimeout() run on a clock the
// trace advances. tests/test_twilio_conformance.py runs the same traces through rtproto's
// TwilioBridge and ClientSession (phone profile) and compares.
//
//   node twilio_replay.mjs < scenarios.json > results.json
//
// Input: a JSON array of scenarios {"name", "config"?, "options"?, "steps"}: "config" is the
// transport's initialSessionConfig, "options" extra constructor options (e.g.
// inputAudioInactivityTimeoutMs), each step one of
//   {"connect": true}       connect() the OpenAI side (before step 0 when no step says so)
//   {"server": EVENT}       the OpenAI server sends EVENT (a JSON object)
//   {"twilio": MESSAGE}     Twilio sends MESSAGE (a JSON object)
//   {"twilio_marks": N}     Twilio echoes the next N marks it was sent and has not echoed yet,
//                           oldest first (as its playback reaches them, or all at once after a
//                           clear), fewer when fewer are waiting
//   {"advance_ms": N}       the clock moves on N ms; timers fire as their time comes
//   {"call": "interrupt", "cancel": B}   the application interrupts (cancel: true unless
//                           false)
// With "twilio_echoes": true the fake Twilio also echoes on its own what real Twilio echoes
// at once: after a clear, every mark sent before it; a done mark as soon as every mark before
// it came back (no audio is queued before it). Those echoes come at the end of the step.
// After every step, timers already due fire (a 0 ms timeout fires within its step).
// Output: a JSON array, one {"name", "twilio", "openai", "events", "failure"} per scenario:
// "twilio" and "openai" hold the messages sent to each socket in order as [step, message]
// (-1: while connecting), "events" the transport events [step, name, payload] (audio,
// audio_interrupted, error), "failure" what threw.

import { TwilioRealtimeTransportLayer } from '@openai/agents-extensions';

// ---------------------------------------------------------------------------- fake clock --

const START = 1_000_000;
let clock = START;
let timerSequence = 0;
const timers = new Map(); // id -> {id, due, callback, args}: pending timeouts
Date.now = () => clock;
globalThis.setTimeout = (callback, delay = 0, ...args) => {
  timerSequence += 1;
  const ms = Number.isFinite(delay) && delay > 0 ? delay : 0;
  const timer = { id: timerSequence, due: clock + ms, callback, args, unref() {}, ref() {} };
  timers.set(timer.id, timer);
  return timer;
};
globalThis.clearTimeout = (timer) => {
  if (timer != null) timers.delete(typeof timer === 'object' ? timer.id : timer);
};

/** Fire every timer due by `until`, earliest first, the clock at each one's time. */
function runTimers(until) {
  for (;;) {
    let next = null;
    for (const timer of timers.values()) {
      if (timer.due <= until && (next === null || timer.due < next.due)) next = timer;
    }
    if (next === null) break;
    timers.delete(next.id);
    clock = Math.max(clock, next.due);
    next.callback(...next.args);
  }
  clock = Math.max(clock, until);
}

// ----------------------------------------------------------------------------- sockets --

class MemorySocket {
  constructor(kind, log) {
    this.kind = kind;
    this.listeners = new Map();
    this.log = log;
    this.readyState = 1;
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
    this.log(this.kind, JSON.parse(text));
  }
  close() {
    this.readyState = 3;
    this.dispatch('close', { code: 1000, reason: '' });
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve)); // chained promises run

// What each transport event carries that rtproto reports too.
const REPORTED = {
  audio: (e) => ({ response_id: e.responseId, bytes: e.data.byteLength }),
  audio_interrupted: () => ({}),
  error: (e) => ({ message: String(e.error?.message ?? e.error?.error?.message ?? e.error) }),
};

async function replay(scenario) {
  clock = START;
  timers.clear();
  let step = -1;
  const sent = { twilio: [], openai: [] };
  const log = (kind, message) => sent[kind].push([step, message]);
  const twilio = new MemorySocket('twilio', log);
  const openai = new MemorySocket('openai', log);
  const unechoed = []; // marks sent to Twilio, not echoed yet
  let cleared = 0; // of those, how many a clear sent this step flushes
  const transport = new TwilioRealtimeTransportLayer({
    twilioWebSocket: twilio,
    createWebSocket: async () => openai,
    skipOpenEventListeners: true,
    ...(scenario.options ?? {}),
  });
  const events = [];
  for (const [name, reduce] of Object.entries(REPORTED)) {
    transport.on(name, (event) => events.push([step, name, reduce(event)]));
  }
  const twilioSend = twilio.send.bind(twilio);
  twilio.send = (text) => {
    const message = JSON.parse(text);
    if (message.event === 'mark') unechoed.push(message);
    if (message.event === 'clear') cleared = unechoed.length;
    twilioSend(text);
  };
  const echo = (marks) => {
    for (const mark of marks) {
      twilio.dispatch('message', {
        data: JSON.stringify({ event: 'mark', streamSid: mark.streamSid, mark: mark.mark }),
      });
    }
  };
  const echoAtOnce = () => {
    for (;;) {
      if (cleared > 0) {
        const flushed = unechoed.splice(0, cleared);
        cleared = 0;
        echo(flushed);
      } else if (unechoed.length > 0 && unechoed[0].mark.name.startsWith('done:')) {
        echo(unechoed.splice(0, 1));
      } else break;
    }
  };
  const connect = async () => {
    await transport.connect({
      apiKey: 'sk-test',
      model: 'gpt-realtime',
      url: 'ws://127.0.0.1:9/v1/realtime',
      initialSessionConfig: scenario.config ?? {},
    });
  };
  let failure = null;
  try {
    if (!scenario.steps.some((s) => 'connect' in s)) await connect();
    for (const [index, s] of scenario.steps.entries()) {
      step = index;
      if ('connect' in s) await connect();
      else if ('server' in s) openai.dispatch('message', { data: JSON.stringify(s.server) });
      else if ('twilio' in s) twilio.dispatch('message', { data: JSON.stringify(s.twilio) });
      else if ('twilio_marks' in s) echo(unechoed.splice(0, s.twilio_marks));
      else if ('advance_ms' in s) runTimers(clock + s.advance_ms);
      else if (s.call === 'interrupt') transport.interrupt(s.cancel ?? true);
      else throw new Error(`unknown step ${JSON.stringify(s)}`);
      if (scenario.twilio_echoes) echoAtOnce();
      else cleared = 0;
      runTimers(clock);
      await settle();
    }
    step = scenario.steps.length;
    transport.close();
  } catch (error) {
    failure = `${error?.name}: ${error?.message}`;
  }
  return { name: scenario.name, twilio: sent.twilio, openai: sent.openai, events, failure };
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const scenario of JSON.parse(input)) results.push(await replay(scenario));
process.stdout.write(`${JSON.stringify(results)}\n`);
