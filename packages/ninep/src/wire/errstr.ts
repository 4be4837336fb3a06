import { Errno, errnoName } from '../backend.js';

/**
 * Linux's strerror texts. Plain 9P2000 carries only a string in Rerror, and Linux's client turns it
 * back into an errno by looking these up (net/9p/error.c), so a bare "ENOENT" would reach it as an
 * unknown error.
 */
const strerror = new Map<number, string>([
  [Errno.EPERM, 'Operation not permitted'],
  [Errno.ENOENT, 'No such file or directory'],
  [Errno.EINTR, 'Interrupted system call'],
  [Errno.EIO, 'Input/output error'],
  [Errno.ENXIO, 'No such device or address'],
  [Errno.E2BIG, 'Argument list too long'],
  [Errno.EBADF, 'Bad file descriptor'],
  [Errno.EAGAIN, 'Resource temporarily unavailable'],
  [Errno.ENOMEM, 'Cannot allocate memory'],
  [Errno.EACCES, 'Permission denied'],
  [Errno.EFAULT, 'Bad address'],
  [Errno.EBUSY, 'Device or resource busy'],
  [Errno.EEXIST, 'File exists'],
  [Errno.EXDEV, 'Invalid cross-device link'],
  [Errno.ENODEV, 'No such device'],
  [Errno.ENOTDIR, 'Not a directory'],
  [Errno.EISDIR, 'Is a directory'],
  [Errno.EINVAL, 'Invalid argument'],
  [Errno.ENFILE, 'Too many open files in system'],
  [Errno.EMFILE, 'Too many open files'],
  [Errno.EFBIG, 'File too large'],
  [Errno.ENOSPC, 'No space left on device'],
  [Errno.ESPIPE, 'Illegal seek'],
  [Errno.EROFS, 'Read-only file system'],
  [Errno.EMLINK, 'Too many links'],
  [Errno.ERANGE, 'Numerical result out of range'],
  [Errno.ENAMETOOLONG, 'File name too long'],
  [Errno.ENOSYS, 'Function not implemented'],
  [Errno.ENOTEMPTY, 'Directory not empty'],
  [Errno.ELOOP, 'Too many levels of symbolic links'],
  [Errno.ENODATA, 'No data available'],
  [Errno.EPROTO, 'Protocol error'],
  [Errno.EBADMSG, 'Bad message'],
  [Errno.EOVERFLOW, 'Value too large for defined data type'],
  [Errno.EOPNOTSUPP, 'Operation not supported'],
  [Errno.EADDRINUSE, 'Address already in use'],
  [Errno.ECONNREFUSED, 'Connection refused'],
  [Errno.ETIMEDOUT, 'Connection timed out'],
  [Errno.ECANCELED, 'Operation canceled'],
]);

/** The Rerror text for an error: a backend's own message, or strerror when it only gave an errno. */
export function errorText(errno: number, message: string): string {
  if (message === errnoName(errno)) return strerror.get(errno) ?? message;
  return message;
}

export function strerrorOf(errno: number): string | undefined {
  return strerror.get(errno);
}

const errnoByName = new Map<string, number>(Object.entries(Errno));
const errnoByText = new Map<string, number>([...strerror].map(([errno, text]) => [text, errno]));

/** The errno a 9P2000 Rerror text stands for (strerror texts and errno names), or undefined. */
export function errnoFromText(text: string): number | undefined {
  return errnoByText.get(text) ?? errnoByName.get(text);
}
