// A Workers-style fetch for Node, for the tests of tests/test_cloudflare_pyodide.py.
//
// workersFetch(url, init) answers a request with `Upgrade: websocket` by opening a WebSocket
// (the `ws` package) and resolves to a response whose `webSocket` has the Workers API:
// accept(), addEventListener, send, close. As in workerd, events wait until accept() and are
// delivered from the event loop, and send() throws before accept() and after close() (once
// the peer has closed, what is sent is dropped). Unlike workerd, `ws` answers the peer's
// close frame itself. Any other request, or a refused upgrade, resolves to a response with
// `webSocket: null`, its status and body. Every request is recorded in `requests`.
import WebSocket from "ws";

export const requests = [];

export class WorkersSocket {
  constructor(ws) {
    this.ws = ws;
    this.listeners = { message: [], close: [], error: [] };
    this.held = [];
    this.accepted = false;
    ws.on("message", (data, isBinary) =>
      this.emit("message", { data: isBinary ? new Uint8Array(data).buffer : data.toString() }),
    );
    ws.on("close", (code, reason) => this.emit("close", { code, reason: reason.toString() }));
    ws.on("error", (error) => this.emit("error", { error }));
  }
  accept() {
    if (this.accepted) throw new TypeError("accept() was already called");
    this.accepted = true;
    const held = this.held.splice(0);  // delivered from the event loop, never inside accept()
    setImmediate(() => {
      for (const [type, event] of held) this.dispatch(type, event);
    });
  }
  addEventListener(type, listener) {
    this.listeners[type].push(listener);
  }
  emit(type, event) {
    if (this.accepted) setImmediate(() => this.dispatch(type, event));
    else this.held.push([type, event]);
  }
  dispatch(type, event) {
    for (const listener of this.listeners[type]) listener(event);
  }
  send(message) {
    if (!this.accepted) throw new TypeError("send() before accept()");
    if (this.closeCalled) throw new TypeError("Can't call WebSocket send() after close().");
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(message); // else: dropped
  }
  close(code, reason) {
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999))
      throw new TypeError(`invalid close code ${code}`);
    this.closeCalled = true;
    this.ws.close(code, reason);
  }
}

export async function workersFetch(url, init = {}) {
  const headers = Object.fromEntries(
    Object.entries(init.headers ?? {}).map(([name, value]) => [name, String(value)]),
  );
  requests.push({ url: String(url), method: init.method ?? "GET", headers });
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const refused = (status, body, responseHeaders = {}) => ({
    status,
    webSocket: null,
    headers: new Map(Object.entries(responseHeaders)),
    text: async () => body,
  });
  if (lower.upgrade?.toLowerCase() !== "websocket") return refused(426, "Expected Upgrade: websocket");
  const protocols = (lower["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const passed = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!["upgrade", "connection", "sec-websocket-protocol"].includes(name.toLowerCase()))
      passed[name] = value;
  }
  const ws = new WebSocket(String(url).replace(/^http/i, "ws"), protocols, {
    headers: passed,
    perMessageDeflate: false,
  });
  return await new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ status: 101, webSocket: new WorkersSocket(ws), headers: new Map() }));
    ws.once("unexpected-response", (request, response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () =>
        resolve(refused(response.statusCode, Buffer.concat(chunks).toString(), response.headers)),
      );
    });
    ws.once("error", reject);
  });
}
