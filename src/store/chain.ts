// Parents of an incremental image (image format v2): each image names its parent relative to
// its own directory together with the parent's header hash. Restart needs every image of the
// chain, so restart and inspect walk it with the header reader (no region data is read).
import * as path from "node:path";
import { errorMessage } from "../errors.js";
import { readImage, type ImageDescription } from "../native.js";

export interface ChainLink {
  path: string;
  generation: number;
  headerHash: string;
  storedBytes: number;
  refBytes: number;
}

/** The parents of image, nearest first; problem is one line naming the bad parent. */
export function imageChain(image: ImageDescription): { chain: ChainLink[]; problem?: string } {
  const chain: ChainLink[] = [];
  let child = image;
  while (child.parent) {
    const pfile = path.resolve(path.dirname(child.path), child.parent);
    if (chain.length >= 64) return { chain, problem: `its chain of parent images is longer than 64 (a loop?) at ${pfile}` };
    let p: ImageDescription;
    try {
      p = readImage(pfile);
    } catch (err) {
      return { chain, problem: `its parent image ${pfile}: ${errorMessage(err).replace(/^mana: /, "")}` };
    }
    if (p.headerHash !== child.parentHeaderHash) {
      return { chain, problem: `its parent image ${pfile} has header hash ${p.headerHash}, but ${child.path} recorded ${child.parentHeaderHash} (the parent was replaced); restart an older full generation` };
    }
    chain.push({ path: pfile, generation: p.info.generation, headerHash: p.headerHash, storedBytes: p.storedBytes, refBytes: p.refBytes });
    child = p;
  }
  return { chain };
}
