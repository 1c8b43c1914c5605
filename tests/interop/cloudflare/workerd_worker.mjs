// A JavaScript Worker for workerd that hosts Pyodide (npm `pyodide`) and runs a Python
// Worker's code in it, for tests/test_cloudflare_pyodide.py. workerd's built-in Python
// Workers download their Pyodide bundle from Cloudflare at startup; this loader needs nothing
// but the files embedded in its config (written by the test):
//
//   pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm (a `wasm` module, compiled by workerd),
//   python_stdlib.zip, pyodide-lock.json, site.zip (rtproto and its dependencies' wheels,
//   unpacked: one `data` module), scenario.py (`text`).
//
// GET /?args=<json> runs scenario.py's `async def main(args)` and answers with what it
// returned. The Python code uses workerd's own `fetch` (the loader's stand-in serves
// Pyodide's files only while Pyodide loads). workerd runs with --experimental for one
// reason: the UNSAFE_EVAL binding lets this loader compile the extension modules of the
// wheels (msgspec, pybase64) at runtime, which a Worker may not do otherwise (the Python
// Workers runtime ships them precompiled).
import { loadPyodide } from "./pyodide.mjs";
import createPyodideModule from "./pyodide.asm.mjs";
import pyodideWasm from "./pyodide.asm.wasm";
import stdlibZip from "./python_stdlib.zip";
import lockFile from "./pyodide-lock.json";
import siteZip from "./site.zip";
import SCENARIO from "./scenario.py";

const INDEX_URL = "https://pyodide.invalid/";
const originalFetch = globalThis.fetch;

function compileFromBytes(unsafeEval) {
  const OriginalModule = WebAssembly.Module;
  const instantiate = WebAssembly.instantiate.bind(WebAssembly);
  const isBytes = (value) => value instanceof ArrayBuffer || ArrayBuffer.isView(value);
  const compile = (bytes) =>
    unsafeEval.newWasmModule(
      bytes instanceof ArrayBuffer
        ? new Uint8Array(bytes)
        : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    );
  function Module(bytes) {
    return isBytes(bytes) ? compile(bytes) : new OriginalModule(bytes);
  }
  Module.prototype = OriginalModule.prototype;
  Object.assign(Module, {
    exports: OriginalModule.exports,
    imports: OriginalModule.imports,
    customSections: OriginalModule.customSections,
  });
  WebAssembly.Module = Module;
  WebAssembly.compile = async (bytes) => compile(bytes);
  WebAssembly.instantiate = async (source, imports) => {
    if (!isBytes(source)) return instantiate(source, imports);
    const module = compile(source);
    return { module, instance: await instantiate(module, imports) };
  };
  WebAssembly.instantiateStreaming = async (response, imports) => {
    await response; // Pyodide's own module: the one workerd compiled from the config
    return { module: pyodideWasm, instance: await instantiate(pyodideWasm, imports) };
  };
}

function pyodideFiles(input, init) {
  const url = input instanceof Request ? input.url : String(input); // (a str or a URL)
  if (url === INDEX_URL + "python_stdlib.zip") return Promise.resolve(new Response(stdlibZip));
  if (url === INDEX_URL + "pyodide.asm.wasm") return Promise.resolve(new Response(""));
  if (url.startsWith(INDEX_URL)) return Promise.resolve(new Response("", { status: 404 }));
  return originalFetch(input, init);
}

let loading = null;
function pyodide(env) {
  // in a request: a Worker may do no I/O and set no timer in its global scope
  loading ??= (async () => {
    compileFromBytes(env.UNSAFE_EVAL);
    globalThis.location ??= new URL(INDEX_URL); // (Pyodide resolves URLs against it)
    // emscripten's fallback without setImmediate is a capturing listener workerd refuses
    globalThis.setImmediate ??= (callback, ...args) => setTimeout(callback, 0, ...args);
    globalThis.clearImmediate ??= (id) => clearTimeout(id);
    globalThis.fetch = pyodideFiles;
    let py;
    try {
      py = await loadPyodide({
        indexURL: INDEX_URL,
        lockFileContents: lockFile,
        packageBaseUrl: INDEX_URL,
        createPyodideModule,
      });
    } finally {
      globalThis.fetch = originalFetch;
    }
    py.FS.writeFile("/tmp/site.zip", new Uint8Array(siteZip));
    await py.runPythonAsync(`
import importlib, site, zipfile
zipfile.ZipFile("/tmp/site.zip").extractall(site.getsitepackages()[0])
importlib.invalidate_caches()
`);
    return py;
  })();
  return loading;
}

export default {
  async fetch(request, env) {
    try {
      const py = await pyodide(env);
      const args = JSON.parse(new URL(request.url).searchParams.get("args") ?? "{}");
      const main = py.runPython(SCENARIO + "\nmain");
      return new Response(await main(py.toPy(args)));
    } catch (error) {
      return new Response(`ERROR: ${error?.stack ?? error}\n`, { status: 500 });
    }
  },
};
