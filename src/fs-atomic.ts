// Writing a file so that readers see either the old content or the whole new one: a temp file
// beside the target (created exclusively, so a planted file or symlink is never followed),
// optionally fsynced, then renamed over the target. The directory itself is never touched.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface AtomicWriteOptions {
  /** Mode of the new file (default 0o644); applied with fchmod so the umask cannot widen it. */
  mode?: number;
  /** fsync the file before the rename and the directory after it (durable across a crash). */
  fsync?: boolean;
}

export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const mode = opts.mode ?? 0o644;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const fd = fs.openSync(tmp, "wx", mode);
  try {
    try {
      fs.fchmodSync(fd, mode);
      fs.writeFileSync(fd, data);
      if (opts.fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  if (opts.fsync) fsyncDir(path.dirname(file));
}

/** Makes a rename in dir durable; some filesystems refuse fsync on a directory (ignored). */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, "r");
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // EINVAL on some filesystems: nothing more we can do
  } finally {
    fs.closeSync(fd);
  }
}
