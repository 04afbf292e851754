// Owns the error thrown when a JSON Patch or JSON Pointer cannot be applied.

export class PatchError extends Error {
  override readonly name = "PatchError";
}
