// OpenAI's own Cloudflare transport (CloudflareRealtimeTransportLayer, from
// @openai/agents-extensions, installed in ../twilio) through workers_fetch.mjs against the
// emulator, for tests/test_cloudflare_pyodide.py: the same fetch the Python driver is tested
// with must carry the JS transport too, and both must ask for the same upgrade.
//
// Usage: node js_cloudflare.mjs <ws url> <api key>
// Prints one JSON line: the requests fetch saw, a refused upgrade's error, and the
// transport's events of one text turn.
import { requests, workersFetch } from "./workers_fetch.mjs";

const [url, apiKey] = process.argv.slice(2);
const extensions = new URL(
  "../twilio/node_modules/@openai/agents-extensions/dist/index.mjs",
  import.meta.url,
);
const { CloudflareRealtimeTransportLayer } = await import(extensions.href);

globalThis.fetch = workersFetch;
const report = { events: [] };

const refusedTransport = new CloudflareRealtimeTransportLayer({ url: url.replace("/v1/realtime", "/nowhere") });
try {
  await refusedTransport.connect({ apiKey, model: "gpt-realtime" });
  report.refused = null;
} catch (error) {
  report.refused = String(error.message);
}

const transport = new CloudflareRealtimeTransportLayer({ url });
const done = new Promise((resolve, reject) => {
  transport.on("turn_done", resolve);
  transport.on("error", (error) => reject(new Error(JSON.stringify(error))));
  setTimeout(() => reject(new Error("no turn_done within 15 s")), 15000);
});
for (const name of ["connection_change", "turn_started", "turn_done", "audio_transcript_delta"]) {
  transport.on(name, () => report.events.push(name));
}
await transport.connect({
  apiKey,
  model: "gpt-realtime",
  initialSessionConfig: { outputModalities: ["text"] },
});
report.status = transport.status;
transport.sendMessage("Hello from the JS transport");
await done;
transport.close();
report.requests = requests;
console.log(JSON.stringify(report));
process.exit(0);
