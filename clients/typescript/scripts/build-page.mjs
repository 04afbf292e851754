// Bundles the demo page's script (infra/local/page/app.ts + this client) into the committed
// infra/local/page/dist/app.js: minified, one IIFE, no source map, no paths or dates in it,
// so the same sources and the locked esbuild version always give the same bytes.
// `--check` rebuilds in memory and fails when the committed bundle differs.

import { build } from "esbuild";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const page = fileURLToPath(new URL("../../../infra/local/page/", import.meta.url));
const out = `${page}dist/app.js`;

const result = await build({
  absWorkingDir: root,
  entryPoints: [`${page}app.ts`],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2022",
  platform: "browser",
  charset: "utf8",
  legalComments: "none",
  sourcemap: false,
  write: false,
  logLevel: "warning",
});
const bytes = result.outputFiles[0].contents;

if (process.argv.includes("--check")) {
  const committed = await readFile(out).catch(() => Buffer.alloc(0));
  if (!committed.equals(Buffer.from(bytes))) {
    console.error(`${out} is not the bundle of the current sources: run \`npm run build:page\` in clients/typescript`);
    process.exit(1);
  }
  console.log(`page bundle up to date (${bytes.length} bytes)`);
} else {
  await mkdir(`${page}dist`, { recursive: true });
  await writeFile(out, bytes);
  console.log(`wrote ${out} (${bytes.length} bytes)`);
}
