export { StoreError, type StoreErrorCode } from './errors.js';
export {
  type Commit,
  EMPTY_TREE,
  type ObjectType,
  type RawObject,
  type Signature,
  type TreeEntry,
  TreeMode,
  encodeCommit,
  encodeTree,
  hashObject,
  isHash,
  parseCommit,
  parseTree,
} from './objects.js';
export { type DeltaBase, GitObjectDb, MemoryObjectDb, type ObjectDb } from './odb.js';
export { PackFile, PackIndex, applyDelta } from './pack.js';
export { GitRefStore, MemoryRefStore, type RefStore, isValidBranchName } from './refs.js';
export { type HeadListener, type Queued, Repository, type RepositoryOptions } from './repo.js';
export {
  type DirValue,
  type EntriesDraft,
  type FileValue,
  NotADirectory,
  type Perm,
  TreeStore,
  type TreeValue,
  deriveEntries,
  dirOfHash,
  emptyDir,
  fileOfBytes,
} from './tree.js';
export { type MergeConflict, type MergeResult, conflictFile, mergeTrees } from './merge.js';
