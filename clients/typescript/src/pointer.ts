// Owns JSON Pointer (RFC 6901): parsing a pointer into reference tokens (with `~1` → `/` and
// `~0` → `~`), building one back, and reading array indices.

import { PatchError } from "./patch-error.js";

/** The reference tokens of `pointer` ("" is the whole document). */
export function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new PatchError(`JSON pointer must start with "/": ${JSON.stringify(pointer)}`);
  if (/~(?![01])/.test(pointer)) throw new PatchError(`invalid "~" escape in JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** Escapes one reference token. */
export function escapeToken(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** The pointer made of `tokens`. */
export function formatPointer(tokens: readonly string[]): string {
  return tokens.map((t) => "/" + escapeToken(t)).join("");
}

/**
 * The array index named by `token` for an array of `length` elements: a non-negative integer
 * without leading zeros, below `length` (or equal to it, or `-`, when `append` is allowed).
 */
export function arrayIndex(token: string, length: number, append: boolean): number {
  if (append && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`invalid array index ${JSON.stringify(token)}`);
  const index = Number(token);
  if (index > length || (index === length && !append)) throw new PatchError(`array index ${index} out of bounds (length ${length})`);
  return index;
}
