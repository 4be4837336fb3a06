import {
  type DirValue,
  type EntriesDraft,
  type FileValue,
  type TreeStore,
  type TreeValue,
  deriveEntries,
  emptyDir,
} from './tree.js';

export interface MergeConflict {
  /** Slash-separated path. */
  readonly path: string;
  readonly reason: string;
}

export interface MergeResult {
  readonly tree: DirValue;
  readonly conflicts: MergeConflict[];
}

const encoder = new TextEncoder();

/** The file DataKit leaves in the working tree where a merge conflicts. */
export function conflictFile(reason: string): FileValue {
  return { kind: 'file', perm: 'normal', data: encoder.encode(`** Conflict **\n${reason}\n`) };
}

/**
 * Three-way merge of trees, as DataKit does it: per entry of ours ∪ theirs, directories merge
 * recursively; files (content and perm together) merge as an optional value: equal sides win,
 * a side equal to the base yields the other, anything else conflicts. Conflicting paths get a
 * conflict file with the reason.
 */
export async function mergeTrees(
  store: TreeStore,
  ours: DirValue,
  theirs: DirValue,
  base: DirValue | undefined,
): Promise<MergeResult> {
  const conflicts: MergeConflict[] = [];
  const mergeDir = async (o: DirValue, t: DirValue, b: DirValue, prefix: string): Promise<DirValue> => {
    if (await store.sameValue(o, t)) return o;
    if (await store.sameValue(o, b)) return t;
    if (await store.sameValue(t, b)) return o;
    const oe = await store.entries(o);
    const te = await store.entries(t);
    const be = await store.entries(b);
    // When both sides descend from the base by a few splices (concurrent commits into a big
    // directory), every other name has the base's contents on both sides and merges to ours:
    // only the names either side changed are looked at.
    const fromBase =
      b.hash !== undefined && !b.entries
        ? [store.changedSince(oe, b.hash), store.changedSince(te, b.hash)]
        : [];
    const [oursChanged, theirsChanged] = fromBase;
    const few = oursChanged !== undefined && theirsChanged !== undefined;
    const out: EntriesDraft = few ? deriveEntries(oe) : new Map<string, TreeValue>();
    // Ours in its order, then the names only theirs has (a tree is written in git's order
    // whatever the map's order, and a directory changes by a few names).
    const names: string[] = few ? [...new Set([...oursChanged, ...theirsChanged])] : [...oe.keys()];
    if (!few) for (const name of te.keys()) if (!oe.has(name)) names.push(name);
    // The names whose value differs from ours: the merged tree is written by splicing those
    // into ours' encoding.
    const changed: string[] = [];
    const set = (name: string, value: TreeValue | undefined) => {
      if (value !== undefined) out.set(name, value);
      else out.delete(name);
    };
    for (const name of names) {
      const ov = oe.get(name);
      const tv = te.get(name);
      // Most entries are the same on both sides: no need to consult the base (or await).
      if (ov === tv) {
        set(name, ov);
        continue;
      }
      changed.push(name);
      if (
        ov?.kind === 'file' &&
        tv?.kind === 'file' &&
        ov.hash !== undefined &&
        ov.hash === tv.hash &&
        ov.perm === tv.perm
      ) {
        out.set(name, ov);
        continue;
      }
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const bv = be.get(name);
      if (ov && tv && ov.kind !== tv.kind) {
        conflicts.push({ path, reason: 'File vs dir' });
        out.set(name, conflictFile('File vs dir'));
        continue;
      }
      if (ov?.kind === 'dir' || tv?.kind === 'dir') {
        const asDir = (v: TreeValue | undefined): DirValue => (v?.kind === 'dir' ? v : emptyDir);
        const merged = await mergeDir(asDir(ov), asDir(tv), asDir(bv), path);
        set(name, (await store.entries(merged)).size > 0 ? merged : undefined);
        continue;
      }
      const result = await mergeFile(store, ov as FileValue | undefined, tv as FileValue | undefined, bv);
      if (typeof result === 'string') {
        conflicts.push({ path, reason: result });
        out.set(name, conflictFile(result));
      } else set(name, result);
    }
    store.noteChanges(out, oe, changed);
    return { kind: 'dir', entries: out };
  };
  const tree = await mergeDir(ours, theirs, base ?? emptyDir, '');
  // In path order, component by component (the first one names the commit's error).
  conflicts.sort((a, b) => {
    const x = a.path.split('/');
    const y = b.path.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const p = x[i] as string;
      const q = y[i] as string;
      if (p !== q) return p < q ? -1 : 1;
    }
    return x.length - y.length;
  });
  return { tree, conflicts };
}

/** The merged file, undefined for "absent", or a conflict reason. */
async function mergeFile(
  store: TreeStore,
  ours: FileValue | undefined,
  theirs: FileValue | undefined,
  base: TreeValue | undefined,
): Promise<FileValue | undefined | string> {
  if (await store.sameValue(ours, theirs)) return ours;
  const old = base?.kind === 'file' ? base : undefined;
  if (ours && theirs) {
    if (!old) return 'default: add/add and no common ancestor';
    if (await store.sameValue(old, ours)) return theirs;
    if (await store.sameValue(old, theirs)) return ours;
    return 'Changed on both branches';
  }
  const present = ours ?? theirs;
  if (!old) return present;
  if (await store.sameValue(old, present)) return undefined;
  return 'option: add/del';
}
