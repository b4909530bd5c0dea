// Builds assets/app.js from src/main.ts and the TypeScript verifier of
// clients/ts (its sources, bundled): one minified ES module, no source
// map, byte-identical for the same sources and the esbuild of the
// lockfile, so `make explorer-check` can compare it with the committed one.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, "src/main.ts")],
  outfile: join(here, "assets/app.js"),
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  platform: "browser",
  legalComments: "none",
  charset: "utf8",
  // clients/ts imports @noble/hashes: resolve it from this package.
  nodePaths: [join(here, "node_modules")],
  logLevel: "warning",
});
