// Owns JSON Patch (RFC 6902): applying add, remove, replace, move, copy and test to a JSON
// document without mutating it. Containers on the path of each operation are copied; every
// other subtree is shared with the input (copy-on-write). An invalid operation throws a
// `PatchError` and the input is left as it was.

import { isObject, jsonEqual } from "./json.js";
import { PatchError } from "./patch-error.js";
import { arrayIndex, parsePointer } from "./pointer.js";

export { PatchError };

export type Operation =
  | { op: "add"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "replace"; path: string; value: unknown }
  | { op: "move"; from: string; path: string }
  | { op: "copy"; from: string; path: string }
  | { op: "test"; path: string; value: unknown };

/** `doc` with every operation of `patch` applied in order (all or nothing). */
export function applyPatch(doc: unknown, patch: readonly unknown[]): unknown {
  if (!Array.isArray(patch)) throw new PatchError("a JSON Patch must be an array of operations");
  let result = doc;
  for (const operation of patch) result = applyOperation(result, operation);
  return result;
}

/** `doc` with one operation applied. */
export function applyOperation(doc: unknown, raw: unknown): unknown {
  const op = checkOperation(raw);
  const path = parsePointer(op.path);
  switch (op.op) {
    case "add":
      return add(doc, path, op.value);
    case "remove":
      if (path.length === 0) throw new PatchError("cannot remove the whole document");
      return edit(doc, path, removeLeaf);
    case "replace":
      if (path.length === 0) return op.value;
      return edit(doc, path, (parent, key) => replaceLeaf(parent, key, op.value));
    case "move": {
      const from = parsePointer(op.from);
      const value = get(doc, from);
      if (from.length === path.length && from.every((t, i) => t === path[i])) return doc;
      if (from.length < path.length && from.every((t, i) => t === path[i])) {
        throw new PatchError(`cannot move ${op.from} into its own child ${op.path}`);
      }
      if (from.length === 0) throw new PatchError("cannot move the whole document");
      return add(edit(doc, from, removeLeaf), path, value);
    }
    case "copy":
      return add(doc, path, get(doc, parsePointer(op.from)));
    case "test":
      if (!jsonEqual(get(doc, path), op.value)) throw new PatchError(`test failed at ${JSON.stringify(op.path)}`);
      return doc;
  }
}

/** The value at `tokens` (throws when there is none). */
export function get(doc: unknown, tokens: readonly string[]): unknown {
  let node = doc;
  for (const token of tokens) node = child(node, token);
  return node;
}

function checkOperation(raw: unknown): Operation {
  if (!isObject(raw)) throw new PatchError("a patch operation must be an object");
  const { op, path } = raw;
  if (typeof path !== "string") throw new PatchError(`operation ${JSON.stringify(op)} lacks a string "path"`);
  switch (op) {
    case "add":
    case "replace":
    case "test":
      if (!Object.hasOwn(raw, "value") || raw.value === undefined) throw new PatchError(`"${op}" lacks a "value"`);
      return raw as Operation;
    case "move":
    case "copy":
      if (typeof raw.from !== "string") throw new PatchError(`"${op}" lacks a string "from"`);
      return raw as Operation;
    case "remove":
      return raw as Operation;
    default:
      throw new PatchError(`unknown patch operation ${JSON.stringify(op)}`);
  }
}

function add(doc: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value;
  return edit(doc, path, (parent, key) => {
    if (Array.isArray(parent)) {
      const copy = parent.slice();
      copy.splice(arrayIndex(key, parent.length, true), 0, value);
      return copy;
    }
    if (isObject(parent)) return withKey(parent, key, value);
    throw new PatchError(`cannot add ${JSON.stringify(key)} to a ${describe(parent)}`);
  });
}

function removeLeaf(parent: unknown, key: string): unknown {
  if (Array.isArray(parent)) {
    const copy = parent.slice();
    copy.splice(arrayIndex(key, parent.length, false), 1);
    return copy;
  }
  if (isObject(parent) && Object.hasOwn(parent, key)) {
    const copy = { ...parent };
    delete copy[key];
    return copy;
  }
  throw new PatchError(`nothing to remove at ${JSON.stringify(key)}`);
}

function replaceLeaf(parent: unknown, key: string, value: unknown): unknown {
  if (Array.isArray(parent)) {
    const copy = parent.slice();
    copy[arrayIndex(key, parent.length, false)] = value;
    return copy;
  }
  if (isObject(parent) && Object.hasOwn(parent, key)) return withKey(parent, key, value);
  throw new PatchError(`nothing to replace at ${JSON.stringify(key)}`);
}

/** Rebuilds the containers along `path` (length ≥ 1), letting `leaf` make the new parent of its last token. */
function edit(doc: unknown, path: readonly string[], leaf: (parent: unknown, key: string) => unknown): unknown {
  const walk = (node: unknown, depth: number): unknown => {
    const key = path[depth] as string;
    if (depth === path.length - 1) return leaf(node, key);
    const updated = walk(child(node, key), depth + 1);
    if (Array.isArray(node)) {
      const copy = node.slice();
      copy[Number(key)] = updated;
      return copy;
    }
    return withKey(node as Record<string, unknown>, key, updated);
  };
  return walk(doc, 0);
}

function child(node: unknown, key: string): unknown {
  if (Array.isArray(node)) return node[arrayIndex(key, node.length, false)];
  if (isObject(node) && Object.hasOwn(node, key)) return node[key];
  throw new PatchError(`no member ${JSON.stringify(key)} in a ${describe(node)}`);
}

/** A copy of `object` with `key` set; `defineProperty` so that keys like "__proto__" stay plain data. */
function withKey(object: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const copy = { ...object };
  Object.defineProperty(copy, key, { value, writable: true, enumerable: true, configurable: true });
  return copy;
}

function describe(node: unknown): string {
  return node === null ? "null" : Array.isArray(node) ? "array" : typeof node;
}
