// Finding the committed generation a user means: a generation dir, a `latest` link, or a
// checkpoint dir (then its latest, else its newest gen-NNNNNN). Partial dirs never qualify.
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.js";
import { GEN_RE, LATEST, listGenerations, genDirName } from "./generations.js";
import { MANIFEST_NAME, parseManifest, type Manifest } from "./manifest.js";

export interface ResolvedGeneration {
  /** real path of the gen-NNNNNN dir */
  dir: string;
  /** the checkpoint dir holding it */
  ckptDir: string;
  manifest: Manifest;
}

function isCommittedGenDir(dir: string): boolean {
  return GEN_RE.test(path.basename(dir)) && fs.existsSync(path.join(dir, MANIFEST_NAME));
}

function noGeneration(shown: string): UserError {
  return new UserError(`${shown} has no committed checkpoint generation (found only partial .gen-*.partial-* directories?)`);
}

export function resolveGeneration(input: string): ResolvedGeneration {
  const shown = input;
  let st: fs.Stats;
  try {
    st = fs.statSync(input);
  } catch {
    if (fs.lstatSync(input, { throwIfNoEntry: false })?.isSymbolicLink()) {
      throw new UserError(`${shown} is a broken link (its generation was removed?); pass a gen-NNNNNN dir instead`);
    }
    throw new UserError(`${shown} does not exist (pass a checkpoint dir or a gen-NNNNNN dir, or set --ckptdir / MANA_CHECKPOINT_DIR)`);
  }
  if (!st.isDirectory()) throw new UserError(`${shown} is not a directory (pass a checkpoint dir or a gen-NNNNNN dir; mana inspect takes single images)`);
  let dir = fs.realpathSync(input);
  if (!fs.existsSync(path.join(dir, MANIFEST_NAME))) {
    // a checkpoint dir: its latest, else its newest committed generation
    const latest = path.join(dir, LATEST);
    if (fs.existsSync(latest) && isCommittedGenDir(fs.realpathSync(latest))) dir = fs.realpathSync(latest);
    else {
      const gens = listGenerations(dir).reverse().map((g) => path.join(dir, genDirName(g)));
      const found = gens.find(isCommittedGenDir);
      if (!found) throw noGeneration(shown);
      dir = found;
    }
  } else if (!GEN_RE.test(path.basename(dir))) {
    // a manifest in a dir not named gen-NNNNNN: a partial (uncommitted) generation
    throw noGeneration(shown);
  }
  const mfile = path.join(dir, MANIFEST_NAME);
  let manifest: Manifest;
  try {
    manifest = parseManifest(fs.readFileSync(mfile, "utf8"), mfile);
  } catch (err) {
    throw new UserError(err instanceof Error ? err.message : String(err));
  }
  return { dir, ckptDir: path.dirname(dir), manifest };
}
