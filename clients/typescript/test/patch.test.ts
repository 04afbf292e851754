// Tests the JSON Patch implementation against the public conformance suite
// (json-patch-tests, vendored in data/) and its copy-on-write guarantees.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { applyPatch, PatchError } from "../src/patch.js";
import { deepFreeze } from "../src/json.js";

interface Case {
  comment?: string;
  doc?: unknown;
  patch?: unknown[];
  expected?: unknown;
  error?: string;
  disabled?: boolean;
}

// Compiled to dist/test/, so the data is two levels up from here.
const dataDir = new URL("../../test/data/json-patch-tests/", import.meta.url);

for (const file of ["tests.json", "spec_tests.json"]) {
  const cases = JSON.parse(readFileSync(new URL(file, dataDir), "utf8")) as Case[];
  describe(`json-patch-tests ${file}`, () => {
    test("has cases", () => assert.ok(cases.filter((c) => c.doc !== undefined).length > 10));
    cases.forEach((c, i) => {
      if (c.doc === undefined || c.patch === undefined) return; // a comment-only record
      const name = `#${i} ${c.comment ?? c.error ?? ""}`;
      test(name, { skip: c.disabled === true ? "disabled in the suite" : false }, () => {
        const before = JSON.stringify(c.doc);
        const doc = deepFreeze(structuredClone(c.doc)); // any write to the input would throw
        if (c.error !== undefined) {
          assert.throws(() => applyPatch(doc, c.patch as unknown[]), PatchError);
        } else {
          const result = applyPatch(doc, c.patch as unknown[]);
          if ("expected" in c) assert.deepStrictEqual(result, c.expected);
        }
        assert.equal(JSON.stringify(doc), before, "the input document is unchanged");
      });
    });
  });
}

describe("copy-on-write", () => {
  test("untouched subtrees are shared, touched containers are new", () => {
    const doc = deepFreeze({ a: { x: 1 }, b: { y: [1, 2] } });
    const out = applyPatch(doc, [{ op: "add", path: "/b/y/-", value: 3 }]) as typeof doc;
    assert.equal(out.a, doc.a);
    assert.notEqual(out.b, doc.b);
    assert.deepEqual(out.b.y, [1, 2, 3]);
    assert.deepEqual(doc.b.y, [1, 2]);
  });

  test("a failing operation leaves nothing half applied", () => {
    const doc = deepFreeze({ a: 1 });
    assert.throws(() => applyPatch(doc, [{ op: "add", path: "/b", value: 2 }, { op: "remove", path: "/zz" }]), PatchError);
    assert.deepEqual(doc, { a: 1 });
  });

  test("__proto__ is a plain key, never the prototype", () => {
    const out = applyPatch({}, [{ op: "add", path: "/__proto__", value: { polluted: true } }]) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.keys(out), ["__proto__"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.throws(() => applyPatch({}, [{ op: "remove", path: "/toString" }]), PatchError);
  });

  test("pointer escapes ~0 and ~1", () => {
    const out = applyPatch({ "a/b": 1, "m~n": 2 }, [
      { op: "move", from: "/a~1b", path: "/c~0d" },
      { op: "test", path: "/m~0n", value: 2 },
    ]);
    assert.deepEqual(out, { "m~n": 2, "c~d": 1 });
    assert.throws(() => applyPatch({}, [{ op: "add", path: "/a~2", value: 1 }]), PatchError);
  });

  test("move into its own child fails", () => {
    assert.throws(() => applyPatch({ a: { b: {} } }, [{ op: "move", from: "/a", path: "/a/b/c" }]), PatchError);
  });
});
