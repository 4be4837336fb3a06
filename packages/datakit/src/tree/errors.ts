import { Errno, NinePError } from '@kitset/ninep';

/**
 * The original DataKit's error strings (9P2000 clients see them verbatim; Linux maps the common
 * ones to errno by string) with the errno that 9P2000.u/.L clients get.
 */
export const VfsError = {
  noEntry: () => new NinePError(Errno.ENOENT, 'No such file or directory'),
  isDir: () => new NinePError(Errno.EISDIR, 'Is a directory'),
  notDir: () => new NinePError(Errno.ENOTDIR, 'Is not a directory'),
  readOnlyFile: () => new NinePError(Errno.EROFS, 'Read-only file'),
  perm: () => new NinePError(Errno.EPERM, 'Operation not permitted'),
  dirReadOnly: () => new NinePError(Errno.EROFS, 'Directory is read-only'),
  alreadyExists: () => new NinePError(Errno.EEXIST, 'Already exists'),
  dirOnly: () => new NinePError(Errno.EPERM, 'Can only contain directories'),
  negativeOffset: (o: number) => new NinePError(Errno.EINVAL, `Negative offset ${o}`),
  offsetTooLarge: (offset: number, len: number) =>
    new NinePError(Errno.EINVAL, `Offset ${offset} beyond end-of-file (len = ${len})`),
  badWriteOffset: (o: number) => new NinePError(Errno.EINVAL, `Bad write offset ${o}`),
  streamSeek: () => new NinePError(Errno.ESPIPE, 'Attempt to seek in stream'),
  extendCommandFile: () => new NinePError(Errno.EINVAL, "Can't extend command file"),
  chmodSpecial: () => new NinePError(Errno.EPERM, "Can't chmod special file"),
  multipleUpdates: () => new NinePError(Errno.EINVAL, "Can't rename/truncate/chmod at the same time"),
  dirLength: () => new NinePError(Errno.EISDIR, "Can't set length of a directory"),
  crossDirRename: () => new NinePError(Errno.EXDEV, 'Can only rename within a directory'),
  tooBig: (limit: number) => new NinePError(Errno.EFBIG, `File too large (limit ${limit} bytes)`),
  other: (message: string, errno: number = Errno.EINVAL) => new NinePError(errno, message),
  interrupted: () => new NinePError(Errno.EINTR, 'Interrupted'),
};

/** OCaml's %S: a double-quoted string with escapes, as the original's messages print names. */
export function quote(text: string): string {
  return JSON.stringify(text);
}
