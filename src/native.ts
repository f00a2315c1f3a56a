// Typed wrapper around the Node addon (build/Release/mana_native.node), which reads and
// verifies images with the same C code the checkpointer writes them with.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { ADDON_PATH } from "./paths.js";
import { UserError } from "./errors.js";

export interface ImageInfo {
  pid: number;
  procId: number;
  generation: number;
  createdUnixMs: number;
  hostname: string;
  kernelRelease: string;
  kernelVersion: string;
  glibcVersion: string;
  exe: string;
  cwd: string;
  cmdline: string;
  vdsoSize: number;
  brkStart: string;
  brkCur: string;
}

export interface ImageThread {
  tid: number;
  main: boolean;
  ckpt: boolean;
  helper: boolean; // a helper thread of libmana's image writer
  fsBase: string;
}

export interface ImageRegion {
  start: string;
  end: string;
  size: number;
  prot: string;
  kind: string;
  path: string;
  storedBytes: number;
  chunks: number;
  zeroChunks: number;
  compressedChunks: number;
  /** chunks held as references to the parent image (incremental images) */
  parentChunks: number;
}

export interface ImageFd {
  fd: number;
  kind: string;
  path: string;
  offset: number;
  flags: number;
  size: number;
}

export interface ImageDescription {
  path: string;
  version: number;
  compressed: boolean;
  fileSize: number;
  rawBytes: number;
  storedBytes: number;
  headerHash: string;
  /** incremental image: its parent, relative to this image's directory; "" for a full image */
  parent: string;
  parentHeaderHash: string;
  parentGeneration: number;
  /** memory bytes referenced in the parent rather than stored here */
  refBytes: number;
  info: ImageInfo;
  threads: ImageThread[];
  regions: ImageRegion[];
  fds: ImageFd[];
}

export interface VerifyResult {
  ok: boolean;
  error?: string;
  chunks: number;
  rawBytes: number;
}

export interface HostFacts {
  kernelRelease: string;
  kernelVersion: string;
  glibcVersion: string;
  vdsoSize: number;
}

export interface NativeAddon {
  readImage(path: string): ImageDescription;
  verifyImage(path: string): VerifyResult;
  hostFacts(): HostFacts;
  patchHeaderForTest(path: string, changes: { vdsoSize?: number; kernelRelease?: string }): void;
}

export const ADDON_NOT_BUILT = "mana: native addon not built; run npm run build";

let cached: NativeAddon | undefined;

/** Loads the addon once; throws a one-line UserError when it has not been built. */
export function native(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) throw new UserError(ADDON_NOT_BUILT);
  const require = createRequire(import.meta.url);
  try {
    cached = require(ADDON_PATH) as NativeAddon;
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new UserError(`${ADDON_NOT_BUILT} (loading ${ADDON_PATH} failed: ${msg})`);
  }
  return cached;
}

/** readImage with the addon's one-line error kept as a UserError. */
export function readImage(path: string): ImageDescription {
  const addon = native();
  try {
    return addon.readImage(path);
  } catch (err) {
    throw new UserError(err instanceof Error ? err.message.split("\n")[0] ?? String(err) : String(err));
  }
}

export function verifyImage(path: string): VerifyResult {
  return native().verifyImage(path);
}

export function hostFacts(): HostFacts {
  return native().hostFacts();
}

export function patchHeaderForTest(path: string, changes: { vdsoSize?: number; kernelRelease?: string }): void {
  native().patchHeaderForTest(path, changes);
}
