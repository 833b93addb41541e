/**
 * `fs/walk`: the files and directories below a directory, breadth first,
 * each directory's entries in name order, bounded in depth, in entries
 * looked at and in directories read; the executor's own ceilings apply on
 * top of what a client asks, so one request cannot walk a whole disk.
 *
 * @module
 */

import type { WalkEntry, WalkOptions, WalkResult } from "../protocol/types.ts";
import { osMessage } from "./io.ts";

/** Ceilings of every walk, whatever it asks for (a larger request is cut and `truncated`). */
export const WALK_LIMITS: Readonly<WalkOptions> = {
  maxDepth: 64,
  maxEntries: 100_000,
  maxDirectories: 10_000,
  followDirectorySymlinks: true,
};

/**
 * Walks `root` (absolute). The root itself must be readable: its errors
 * are thrown (`NotFound` and so on); a root that is not a directory has no
 * entries. Directories below it that cannot be read are listed in `errors`.
 * With `visible`, an entry whose real path (symlinks resolved) it rejects is
 * left out and not descended into (a sandboxed walk).
 */
export async function walkDirectory(
  root: string,
  asked: WalkOptions,
  options: { visible?: (realPath: string) => boolean } = {},
): Promise<WalkResult> {
  const visible = options.visible;
  const maxDepth = Math.min(asked.maxDepth, WALK_LIMITS.maxDepth);
  const maxEntries = Math.min(asked.maxEntries, WALK_LIMITS.maxEntries);
  const maxDirectories = Math.min(asked.maxDirectories, WALK_LIMITS.maxDirectories);
  const follow = asked.followDirectorySymlinks;
  const entries: WalkEntry[] = [];
  const errors: { path: string; message: string }[] = [];
  const rootInfo = await Deno.stat(root);
  if (!rootInfo.isDirectory) return { entries, errors, truncated: false };
  // Each directory's real path: its parent's and its name, or, through a symlink, resolved.
  const rootReal = await Deno.realPath(root);
  // Directories already queued, by canonical path: with symlinks followed, each is read once.
  const seen = new Set<string>(follow ? [rootReal] : []);
  type Dir = { path: string; real: string; depth: number };
  let queue: Dir[] = [{ path: root, real: rootReal, depth: 0 }];
  let read = 0;
  let looked = 0;
  while (queue.length > 0) {
    const next: Dir[] = [];
    for (const dir of queue) {
      if (read >= maxDirectories) return { entries, errors, truncated: true };
      read++;
      let names: Deno.DirEntry[];
      try {
        names = await Array.fromAsync(Deno.readDir(dir.path));
      } catch (error) {
        if (dir.path === root) throw error;
        errors.push({ path: dir.path, message: osMessage(error) });
        continue;
      }
      names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of names) {
        if (looked >= maxEntries) return { entries, errors, truncated: true };
        looked++;
        const path = dir.path.endsWith("/") ? dir.path + entry.name : `${dir.path}/${entry.name}`;
        let real = dir.real === "/" ? `/${entry.name}` : `${dir.real}/${entry.name}`;
        let descend = dir.depth < maxDepth;
        if (entry.isFile) {
          if (visible === undefined || visible(real)) entries.push({ path, kind: "file" });
          continue;
        }
        if (entry.isSymlink) {
          if (!follow) continue;
          let target: Deno.FileInfo;
          try {
            target = await Deno.stat(path);
          } catch {
            continue; // Broken or looping: left out, as symlinks to files are.
          }
          if (!target.isDirectory) continue;
        } else if (!entry.isDirectory) {
          continue; // fifos, sockets, devices
        }
        if (entry.isSymlink) real = await Deno.realPath(path).catch(() => real);
        if (visible !== undefined && !visible(real)) continue;
        entries.push({ path, kind: "directory" });
        if (follow) {
          if (seen.has(real)) descend = false;
          else seen.add(real);
        }
        if (descend) next.push({ path, real, depth: dir.depth + 1 });
      }
    }
    queue = next;
  }
  return { entries, errors, truncated: false };
}
