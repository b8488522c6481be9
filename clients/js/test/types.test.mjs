// The declarations (aleatoria.d.ts) compile, and type each event's detail:
// tsc --strict on test/types.ts, whose @ts-expect-error lines must fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

test("aleatoria.d.ts types the events, strictly", () => {
  const tsc = path.join(here, "../node_modules/typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--target", "es2022",
      "--module", "nodenext", "--lib", "es2022,dom", "--skipLibCheck", "false",
      path.join(here, "types.ts")], { encoding: "utf8", stdio: "pipe" });
  } catch (error) {
    assert.fail(`tsc found errors:\n${error.stdout}${error.stderr}`);
  }
});
