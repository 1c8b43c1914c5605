# A Python Worker's use of rtproto, run in Pyodide by pyodide_run.mjs (and in workerd by
# workerd_worker.mjs) for tests/test_cloudflare_pyodide.py: main(args) returns a JSON report.
import json
import sys

from rtproto.adapters.cloudflare import connect_cloudflare

from rtproto.wire import HandshakeRefused


async def main(args):
    args = args.to_py() if hasattr(args, "to_py") else args
    url, key = args["url"], args["key"]
    report = {"python": sys.version.split()[0], "platform": sys.platform}
    try:
        async with connect_cloudflare(url):
            pass
    except HandshakeRefused as exc:
        report["refused"] = {"status": exc.status, "message": str(exc)}
    async with connect_cloudflare(
        url, api_key=key, session={"output_modalities": ["text"]}
    ) as conn:
        await conn.send_message("Hello from a Worker")
        names, text = [], []
        async for event in conn:
            names.append(getattr(event, "name", type(event).__name__))
            if names[-1] == "text_delta":
                text.append(event.delta)
            if names[-1] == "turn_done":
                break
        report["text"] = "".join(text)
        report["history"] = [
            f"{item.type}:{getattr(item, 'role', '')}" for item in conn.session.history
        ]
        report["usage"] = conn.session.usage.total_tokens
    report["events"] = names
    # a wrong key: the service (and the emulator) accepts, sends an error and closes 3000
    async with connect_cloudflare(url, api_key=key + "-wrong") as wrong:
        kinds = [getattr(event, "name", type(event).__name__) async for event in wrong]
    report["wrong_key"] = {"errors": kinds.count("error"), "close_code": wrong.close_code}
    report["close_code"] = conn.close_code
    report["after_close"] = [getattr(event, "name", type(event).__name__) async for event in conn]
    return json.dumps(report)
