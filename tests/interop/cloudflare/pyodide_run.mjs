// Runs a Python scenario of rtproto's Cloudflare driver in Pyodide (the runtime of Python
// Workers) under Node, for tests/test_cloudflare_pyodide.py.
//
// Usage: node pyodide_run.mjs <src dir> <wheels dir> <scenario.py> <json args>
// Prints one JSON line: what the scenario's `async def main(args)` returned, plus the
// requests the fetch below saw.
//
// globalThis.fetch is workers_fetch.mjs's Workers-style fetch.
import { readFileSync } from "node:fs";
import { loadPyodide } from "pyodide";
import { requests, workersFetch } from "./workers_fetch.mjs";

const [srcDir, wheelsDir, scenarioPath, argsJson] = process.argv.slice(2);

globalThis.fetch = workersFetch;

const pyodide = await loadPyodide();
pyodide.mountNodeFS("/host-src", srcDir);
pyodide.mountNodeFS("/host-wheels", wheelsDir);
await pyodide.runPythonAsync(`
import os, shutil, site, sys, zipfile
target = site.getsitepackages()[0]
for name in sorted(os.listdir("/host-wheels")):
    if name.endswith(".whl"):
        zipfile.ZipFile(os.path.join("/host-wheels", name)).extractall(target)
shutil.copytree("/host-src/rtproto", os.path.join(target, "rtproto"), dirs_exist_ok=True)
shutil.copytree("/host-src/adapters", os.path.join(target, "rtproto", "adapters"), dirs_exist_ok=True)
`);
const scenario = pyodide.runPython(readFileSync(scenarioPath, "utf8") + "\nmain");
const result = await scenario(pyodide.toPy(JSON.parse(argsJson)));
const out = JSON.parse(result);
out.requests = requests;
console.log(JSON.stringify(out));
process.exit(0);
