// Prints the size of the client library (src/index.ts bundled and minified, ESM) and of the
// committed page bundle, raw and gzip -9.

import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = fileURLToPath(new URL("..", import.meta.url));
const lib = await build({ absWorkingDir: root, entryPoints: ["src/index.ts"], bundle: true, minify: true, format: "esm", target: "es2022", write: false, legalComments: "none" });
const page = await readFile(new URL("../../../infra/local/page/dist/app.js", import.meta.url));
for (const [name, bytes] of [["client (min, esm)", lib.outputFiles[0].contents], ["page dist/app.js", page]]) {
  console.log(`${name}: ${bytes.length} B, gzip -9 ${gzipSync(bytes, { level: 9 }).length} B`);
}
