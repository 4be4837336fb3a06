/*
 * The little C runtime shared by Kitset's libc-free riscv64 guest inits (guest/riscv-devtest/init.c,
 * packages/kitset/guest/init.c): types, Linux system call numbers and flags, the raw `ecall`, and
 * console printing. Everything is `static inline` (or a macro) so a program that uses only part of it
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

#endif
