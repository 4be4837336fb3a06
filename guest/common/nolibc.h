/*
 * The little C runtime shared by Kitset's libc-free riscv64 guest inits (guest/riscv-devtest/init.c,
 * packages/kitset/guest/init.c): types, Linux system call numbers and flags, the raw `ecall`, and
 * console printing, and the socket helpers both use (IPv4 addresses, vsock connect/listen, an upper-casing
 * echo loop, an HTTP/1.0 GET). Everything is `static inline` (or a macro) so a program that uses only part of it
 * builds cleanly under -Wall -Wextra -Werror. Build with -I guest/common.
 */
#ifndef KITSET_NOLIBC_H
#define KITSET_NOLIBC_H

typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

/* riscv64 (asm-generic) system call numbers. */
#define SYS_ioctl 29
#define SYS_mkdirat 34
#define SYS_unlinkat 35
#define SYS_mount 40
#define SYS_openat 56
#define SYS_close 57
#define SYS_getdents64 61
#define SYS_lseek 62
#define SYS_read 63
#define SYS_write 64
#define SYS_ppoll 73
#define SYS_fsync 82
#define SYS_exit 93
#define SYS_nanosleep 101
#define SYS_clock_gettime 113
#define SYS_reboot 142
#define SYS_socket 198
#define SYS_bind 200
#define SYS_listen 201
#define SYS_accept 202
#define SYS_connect 203
#define SYS_sendto 206
#define SYS_recvfrom 207
#define SYS_setsockopt 208
#define SYS_shutdown 210
#define SYS_clone 220
#define SYS_execve 221
#define SYS_wait4 260
#define SYS_renameat2 276

#define AT_FDCWD (-100)
#define AT_REMOVEDIR 0x200
#define O_RDONLY 0
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_NOCTTY 0400
#define O_TRUNC 01000
#define O_DIRECTORY 0200000
#define AF_INET 2
#define AF_VSOCK 40
#define SOCK_STREAM 1
#define SOCK_DGRAM 2

static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
  register long a0 __asm__("a0") = a;
  register long a1 __asm__("a1") = b;
  register long a2 __asm__("a2") = c;
  register long a3 __asm__("a3") = d;
  register long a4 __asm__("a4") = e;
  register long a5 __asm__("a5") = f;
  register long a7 __asm__("a7") = n;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a5), "r"(a7) : "memory");
  return a0;
}
#define SC(n, a, b, c) sc6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* The compiler may emit calls to these for struct copies and zeroing, so they keep their libc names. */
void *memset(void *d, int c, size_t n) {
  u8 *p = d;
  while (n--) *p++ = (u8)c;
  return d;
}
void *memcpy(void *d, const void *s, size_t n) {
  u8 *a = d;
  const u8 *b = s;
  while (n--) *a++ = *b++;
  return d;
}

/* Where say() writes: the console, until a program points it elsewhere. */
static int out = 1;

static inline size_t slen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
static inline void say(const char *s) { SC(SYS_write, out, s, slen(s)); }
static inline void saynum(long v) {
  char d[24];
  int i = 23;
  int neg = v < 0;
  unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
  d[i] = 0;
  do {
    d[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) d[--i] = '-';
  say(&d[i]);
}
static inline int streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}
static inline int startswith(const char *s, const char *p) {
  while (*p)
    if (*s++ != *p++) return 0;
  return 1;
}
static inline unsigned long parse_num(const char *s) {
  unsigned long v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (unsigned long)(*s++ - '0');
  return v;
}

/* FNV-1a 32-bit: the host tests compute the same over the same bytes. */
#define FNV_INIT 2166136261u
static inline u32 fnv(u32 h, const u8 *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

struct timespec {
  long sec, nsec;
};
/* Monotonic milliseconds. */
static inline long now_ms(void) {
  struct timespec t;
  SC(SYS_clock_gettime, 1, &t, 0);
  return t.sec * 1000 + t.nsec / 1000000;
}

/* ---- sockets ---- */
struct sockaddr_in {
  u16 family;
  u16 port; /* network byte order */
  u32 addr; /* network byte order */
  u8 zero[8];
};
struct sockaddr_vm {
  u16 family;
  u16 reserved1;
  u32 port;
  u32 cid;
  u8 zero[4];
};
#define VMADDR_CID_ANY 0xffffffffu
#define VMADDR_CID_HOST 2u

static inline u16 htons(unsigned long port) { return (u16)(((port & 0xff) << 8) | ((port >> 8) & 0xff)); }

/* "a.b.c.d" -> address in network byte order; advances *sp past it. Returns 0 on a malformed address
 * (a missing or non-numeric part, a part above 255), leaving *sp alone. */
static inline u32 parse_ip(const char **sp) {
  const char *s = *sp;
  u32 ip = 0;
  for (int k = 0; k < 4; k++) {
    if (*s < '0' || *s > '9') return 0;
    u32 part = 0;
    while (*s >= '0' && *s <= '9' && part <= 255) part = part * 10 + (u32)(*s++ - '0');
    if (part > 255) return 0;
    ip |= part << (8 * k);
    if (k < 3) {
      if (*s != '.') return 0;
      s++;
    }
  }
  *sp = s;
  return ip;
}

/* Writes all of p (or fails): n, or -errno (-5, EIO, when the peer takes nothing). */
static inline long write_all(long fd, const u8 *p, long n) {
  long off = 0;
  while (off < n) {
    long w = SC(SYS_write, fd, p + off, n - off);
    if (w <= 0) return w < 0 ? w : -5;
    off += w;
  }
  return n;
}

/* A TCP connection to ip:port (network-order address): the socket, or -errno. */
static inline long tcp_connect(u32 ip, unsigned long port) {
  long s = SC(SYS_socket, AF_INET, SOCK_STREAM, 0);
  if (s < 0) return s;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.family = AF_INET;
  a.port = htons(port);
  a.addr = ip;
  long e = SC(SYS_connect, s, &a, sizeof a);
  if (e < 0) {
    SC(SYS_close, s, 0, 0);
    return e;
  }
  return s;
}

/* A vsock stream connected to cid:port: the socket, or -errno (ECONNRESET when nobody listens). */
static inline struct sockaddr_vm vsock_address(u32 cid, u32 port) {
  struct sockaddr_vm a;
  memset(&a, 0, sizeof a);
  a.family = AF_VSOCK;
  a.port = port;
  a.cid = cid;
  return a;
}
static inline long vsock_connect(u32 cid, u32 port) {
  long s = SC(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return s;
  struct sockaddr_vm a = vsock_address(cid, port);
  long e = SC(SYS_connect, s, &a, sizeof a);
  if (e < 0) {
    SC(SYS_close, s, 0, 0);
    return e;
  }
  return s;
}

/* A vsock socket listening on port (any cid): the socket, or -errno; *what names the step that failed. */
static inline long vsock_listen(u32 port, const char **what) {
  long s = SC(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
  *what = "socket";
  if (s < 0) return s;
  struct sockaddr_vm a = vsock_address(VMADDR_CID_ANY, port);
  long e = SC(SYS_bind, s, &a, sizeof a);
  *what = "bind";
  if (e == 0) {
    e = SC(SYS_listen, s, 4, 0);
    *what = "listen";
  }
  if (e < 0) {
    SC(SYS_close, s, 0, 0);
    return e;
  }
  return s;
}

/* Echoes what fd sends back in upper case until EOF, through buf; returns the byte count and leaves the
 * FNV-1a of the bytes as received in *hash. */
static inline long echo_upper(long fd, u8 *buf, long size, u32 *hash) {
  long n, total = 0;
  u32 h = FNV_INIT;
  while ((n = SC(SYS_read, fd, buf, size)) > 0) {
    h = fnv(h, buf, (size_t)n);
    total += n;
    for (long i = 0; i < n; i++)
      if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] = (u8)(buf[i] - 32);
    if (write_all(fd, buf, n) < 0) break;
  }
  *hash = h;
  return total;
}

/* HTTP/1.0 GET of path on an open connection, reading through buf to the end. Returns the body's length
 * (its FNV-1a in *hash), -1 when the reply has no header end, or -errno. */
static inline long http_get(long s, const char *path, u8 *buf, long size, u32 *hash) {
  char req[300];
  size_t r = 0;
  const char *parts[] = {"GET ", path, " HTTP/1.0\r\nHost: kitset\r\n\r\n"};
  for (int k = 0; k < 3; k++)
    for (const char *c = parts[k]; *c && r < sizeof req; c++) req[r++] = *c;
  long e = write_all(s, (const u8 *)req, (long)r);
  if (e < 0) return e;
  long n, body = -1;
  u32 h = FNV_INIT;
  int state = 0; /* progress through "\r\n\r\n" */
  while ((n = SC(SYS_read, s, buf, size)) > 0) {
    long i = 0;
    if (body < 0) {
      for (; i < n; i++) {
        u8 ch = buf[i];
        state = (ch == (state % 2 == 0 ? '\r' : '\n')) ? state + 1 : (ch == '\r' ? 1 : 0);
        if (state == 4) {
          i++;
          body = 0;
          break;
        }
      }
    }
    if (body >= 0) {
      h = fnv(h, buf + i, (size_t)(n - i));
      body += n - i;
    }
  }
  if (n < 0) return n;
  *hash = h;
  return body;
}

/* Powers the machine off (init must never return); if the kernel refuses, says why with `tag` first. */
static int power_off(const char *tag) {
  long err = SC(SYS_reboot, 0xfee1deadL, 672274793L, 0x4321fedcL);
  say(tag);
  say(" power-off failed errno ");
  saynum(-err);
  say("\n");
  return 1;
}

/* The entry point: no libc, so _start calls the init's kitset_main and exits with its status. */
int kitset_main(void);
__asm__(
    ".section .text._start\n"
    ".global _start\n"
    "_start:\n"
    "  call kitset_main\n"
    "  li a7, 93\n"
    "  ecall\n");

#endif
