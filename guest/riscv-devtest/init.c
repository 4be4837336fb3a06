/*
 * Kitset device-test guest's /init: runs the device checks named on the kernel command line
 * (kitset.test=rng,console,blk:vda,9p:share,vsock:PORT,net:IP:PORT/PATH,net-send:IP:PORT:KIB,...) with raw system calls, prints one
 * result line per check ("KT <check> ok ..." or "KT <check> FAIL ..."), then "KT done" and
 * powers off. The host test reads those lines and checks the effects on its side (image blocks,
 * files in the shared directory, bytes on sockets).
 *
 * Built static with no C library, like guest/riscv/init.c, so the initramfs stays tiny and boots fast.
 */

#include "nolibc.h"

#define EBUSY 16
#define EEXIST 17

#define BLKDISCARD 0x1277
#define BLKZEROOUT 0x127f

static void puthex(const u8 *p, size_t n) {
  static const char hx[] = "0123456789abcdef";
  char b[2];
  for (size_t i = 0; i < n; i++) {
    b[0] = hx[p[i] >> 4];
    b[1] = hx[p[i] & 15];
    SC(SYS_write, out, b, 2);
  }
}
static void puthex32(u32 v) {
  u8 b[4] = {(u8)(v >> 24), (u8)(v >> 16), (u8)(v >> 8), (u8)v};
  puthex(b, 4);
}

static void fail(const char *check, const char *what, long err) {
  say("KT ");
  say(check);
  say(" FAIL ");
  say(what);
  say(" errno ");
  saynum(-err);
  say("\n");
}

static u8 buf[262144];
static u8 buf2[65536];

/* ---- rng: read /dev/hwrng and print the bytes ---- */
static void test_rng(void) {
  long fd = SC(SYS_openat, AT_FDCWD, "/dev/hwrng", O_RDONLY);
  if (fd < 0) return fail("rng", "open /dev/hwrng", fd);
  long n = SC(SYS_read, fd, buf, 32);
  SC(SYS_close, fd, 0, 0);
  if (n != 32) return fail("rng", "read", n);
  say("KT rng ok ");
  puthex(buf, 32);
  say("\n");
}

/* Waits up to `ms` for fd to become readable; >0 when it is. */
struct pollfd {
  int fd;
  short events, revents;
};
static long wait_readable(long fd, long ms) {
  struct pollfd p = {(int)fd, 1, 0};
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
  return sc6(SYS_ppoll, (long)&p, 1, (long)&t, 0, 8, 0);
}

/* ---- console: write to the virtio console (arg: hvc1; hvc0 is the SBI console), read a line back ---- */
static void test_console(const char *dev) {
  char path[32] = "/dev/";
  size_t k = 5;
  for (const char *q = *dev ? dev : "hvc1"; *q && k < 30; q++) path[k++] = *q;
  path[k] = 0;
  long fd = SC(SYS_openat, AT_FDCWD, path, O_RDWR | O_NOCTTY);
  if (fd < 0) return fail("console", "open", fd);
  const char *hello = "KT-HVC-HELLO\n";
  long n = SC(SYS_write, fd, hello, slen(hello));
  if (n < 0) return fail("console", "write", n);
  say("KT console ready\n");
  size_t got = 0;
  while (got < 100) {
    if (wait_readable(fd, 20000) <= 0) return fail("console", "no input within 20 s", 0);
    n = SC(SYS_read, fd, buf + got, 100 - got);
    if (n <= 0) return fail("console", "read", n);
    got += (size_t)n;
    if (buf[got - 1] == '\n') break;
  }
  buf[got ? got - 1 : 0] = 0;
  SC(SYS_close, fd, 0, 0);
  say("KT console ok got ");
  say((const char *)buf);
  say("\n");
}

/* ---- blk: checksum the first 64 KiB, write a pattern at 1 MiB, zero and discard ranges ---- */
static void test_blk(const char *dev) {
  char path[32] = "/dev/";
  size_t i = 5;
  for (const char *p = dev; *p && i < 30; p++) path[i++] = *p;
  path[i] = 0;
  char check[24] = "blk:";
  for (i = 0; dev[i] && i < 16; i++) check[4 + i] = dev[i];
  check[4 + i] = 0;
  long fd = SC(SYS_openat, AT_FDCWD, path, O_RDWR);
  if (fd < 0) return fail(check, "open", fd);
  long n = SC(SYS_read, fd, buf2, 65536);
  if (n != 65536) return fail(check, "read", n);
  u32 before = fnv(FNV_INIT, buf2, 65536);
  for (i = 0; i < 262144; i++) buf[i] = (u8)((i * 7 + (i >> 9)) & 0xff);
  SC(SYS_lseek, fd, 1 << 20, 0);
  n = SC(SYS_write, fd, buf, 262144);
  if (n != 262144) return fail(check, "write", n);
  n = SC(SYS_fsync, fd, 0, 0);
  if (n < 0) return fail(check, "fsync", n);
  /* zero 64 KiB at 2 MiB (write-zeroes) and discard 64 KiB at 3 MiB */
  u64 range[2] = {2 << 20, 65536};
  long z = SC(SYS_ioctl, fd, BLKZEROOUT, range);
  u64 range2[2] = {3 << 20, 65536};
  long d = SC(SYS_ioctl, fd, BLKDISCARD, range2);
  SC(SYS_fsync, fd, 0, 0);
  /* read back the pattern through the page cache's replacement: drop by reopening is not enough,
     so compare what we read with what we wrote (the host checks the image itself). */
  SC(SYS_lseek, fd, 1 << 20, 0);
  n = SC(SYS_read, fd, buf, 65536);
  SC(SYS_close, fd, 0, 0);
  say("KT ");
  say(check);
  say(" ok head ");
  puthex32(before);
  say(" zeroout ");
  saynum(z);
  say(" discard ");
  saynum(d);
  say("\n");
}

/* ---- 9p: mount, read the host's file, create/write/rename/unlink/mkdir ---- */
static long write_file(const char *p, const char *text) {
  long fd = SC(SYS_openat, AT_FDCWD, p, O_WRONLY | O_CREAT | O_TRUNC);
  if (fd < 0) return fd;
  long n = SC(SYS_write, fd, text, slen(text));
  SC(SYS_close, fd, 0, 0);
  return n < 0 ? n : 0;
}
static void test_9p(const char *tag) {
  long e = SC(SYS_mkdirat, AT_FDCWD, "/mnt", 0755);
  e = SC(SYS_mkdirat, AT_FDCWD, "/mnt/9p", 0755);
  e = sc6(SYS_mount, (long)tag, (long)"/mnt/9p", (long)"9p", 0, (long)"trans=virtio,version=9p2000.L,msize=131072", 0);
  if (e < 0) return fail("9p", "mount", e);
  long fd = SC(SYS_openat, AT_FDCWD, "/mnt/9p/hello.txt", O_RDONLY);
  if (fd < 0) return fail("9p", "open hello.txt", fd);
  long n = SC(SYS_read, fd, buf2, 200);
  SC(SYS_close, fd, 0, 0);
  if (n < 0) return fail("9p", "read hello.txt", n);
  buf2[n] = 0;
  if (n > 0 && buf2[n - 1] == '\n') buf2[n - 1] = 0;
  e = write_file("/mnt/9p/from-guest.txt", "written by the guest\n");
  if (e < 0) return fail("9p", "create from-guest.txt", e);
  e = write_file("/mnt/9p/tmp.txt", "renamed\n");
  if (e < 0) return fail("9p", "create tmp.txt", e);
  e = sc6(SYS_renameat2, AT_FDCWD, (long)"/mnt/9p/tmp.txt", AT_FDCWD, (long)"/mnt/9p/renamed.txt", 0, 0);
  if (e < 0) return fail("9p", "rename", e);
  e = SC(SYS_unlinkat, AT_FDCWD, "/mnt/9p/delete-me.txt", 0);
  if (e < 0) return fail("9p", "unlink delete-me.txt", e);
  e = SC(SYS_mkdirat, AT_FDCWD, "/mnt/9p/newdir", 0755);
  if (e < 0) return fail("9p", "mkdir", e);
  e = write_file("/mnt/9p/newdir/inner.txt", "inner\n");
  if (e < 0) return fail("9p", "create newdir/inner.txt", e);
  /* a big file: 200 KiB of pattern, read back and checksummed */
  fd = SC(SYS_openat, AT_FDCWD, "/mnt/9p/big.bin", O_WRONLY | O_CREAT | O_TRUNC);
  if (fd < 0) return fail("9p", "create big.bin", fd);
  for (size_t i = 0; i < 204800; i++) buf[i] = (u8)((i * 13) ^ (i >> 8));
  n = SC(SYS_write, fd, buf, 204800);
  SC(SYS_close, fd, 0, 0);
  if (n != 204800) return fail("9p", "write big.bin", n);
  /* escape attempt: the host put a symlink "escape" -> "../outside.txt" */
  fd = SC(SYS_openat, AT_FDCWD, "/mnt/9p/escape", O_RDONLY);
  long esc = fd;
  if (fd >= 0) SC(SYS_close, fd, 0, 0);
  say("KT 9p ok hello \"");
  say((const char *)buf2);
  say("\" escape ");
  saynum(esc < 0 ? esc : 0);
  say("\n");
}

/* ---- vsock ---- */
static void test_vsock_connect(const char *arg) {
  long t0 = now_ms();
  long s = vsock_connect(VMADDR_CID_HOST, (u32)parse_num(arg));
  if (s < 0) return fail("vsock", "connect", s);
  const char *msg = "ping from guest\n";
  SC(SYS_write, s, msg, slen(msg));
  size_t got = 0;
  long n;
  while (got < 200 && (n = SC(SYS_read, s, buf + got, 200 - got)) > 0) got += (size_t)n;
  buf[got] = 0;
  if (got && buf[got - 1] == '\n') buf[got - 1] = 0;
  SC(SYS_close, s, 0, 0);
  say("KT vsock ok reply \"");
  say((const char *)buf);
  say("\" ms ");
  saynum(now_ms() - t0);
  say("\n");
}
static void test_vsock_refused(const char *arg) {
  long t0 = now_ms();
  long e = vsock_connect(VMADDR_CID_HOST, (u32)parse_num(arg));
  if (e >= 0) {
    SC(SYS_close, e, 0, 0);
    return fail("vsock-refused", "connected", 0);
  }
  say("KT vsock-refused ok errno ");
  saynum(-e);
  say(" ms ");
  saynum(now_ms() - t0);
  say("\n");
}
/* arg PORT:N — N sequential connections, each sending one byte and reading the echo: connection rate */
static void test_vsock_many(const char *arg) {
  unsigned long port = parse_num(arg);
  while (*arg && *arg != ':') arg++;
  unsigned long count = *arg == ':' ? parse_num(arg + 1) : 100;
  long t0 = now_ms();
  unsigned long ok = 0;
  for (unsigned long i = 0; i < count; i++) {
    long s = vsock_connect(VMADDR_CID_HOST, (u32)port);
    if (s < 0) {
      say("KT vsock-many connections before failure ");
      saynum((long)i);
      say("\n");
      return fail("vsock-many", "connect", s);
    }
    u8 c = (u8)i;
    SC(SYS_write, s, &c, 1);
    u8 r = 0;
    if (SC(SYS_read, s, &r, 1) == 1 && r == c) ok++;
    SC(SYS_close, s, 0, 0);
  }
  say("KT vsock-many ok connections ");
  saynum((long)ok);
  say(" ms ");
  saynum(now_ms() - t0);
  say("\n");
}

/* One client's share of vsock-par: `count` sequential connect / 1-byte echo / close cycles; returns the
 * number that failed (a failed connect ends the run and counts every cycle left). */
static long vsock_client(u32 port, long count, long first) {
  for (long i = 0; i < count; i++) {
    long s = vsock_connect(VMADDR_CID_HOST, port);
    if (s < 0) {
      say("KT vsock-par-client FAIL connect errno ");
      saynum(-s);
      say("\n");
      return count - i;
    }
    u8 c = (u8)(first + i), r = 0;
    long w = SC(SYS_write, s, &c, 1);
    long n = SC(SYS_read, s, &r, 1);
    SC(SYS_close, s, 0, 0);
    if (w != 1 || n != 1 || r != c) return count - i;
  }
  return 0;
}
/* arg PORT:K:N — N connections made by K client processes at once (each sequential, as `ab -c K`):
 * the device's capacity rather than one round trip's latency. Each client's exit status is its failures. */
static void test_vsock_par(const char *arg) {
  unsigned long port = parse_num(arg);
  while (*arg && *arg != ':') arg++;
  long k = *arg == ':' ? (long)parse_num(++arg) : 8;
  while (*arg && *arg != ':') arg++;
  long count = *arg == ':' ? (long)parse_num(arg + 1) : 1000;
  if (k < 1 || k > 64 || count < k) return fail("vsock-par", "bad argument", 0);
  long t0 = now_ms();
  long started = 0, failed = 0;
  for (long j = 0; j < k; j++) {
    long share = count / k + (j < count % k ? 1 : 0);
    long pid = sc6(SYS_clone, 17 /* SIGCHLD */, 0, 0, 0, 0, 0);
    if (pid == 0) {
      long bad = vsock_client((u32)port, share, j * 1000);
      SC(SYS_exit, bad > 255 ? 255 : bad, 0, 0);
    }
    if (pid < 0) {
      failed += share;
      continue;
    }
    started++;
  }
  for (long j = 0; j < started; j++) {
    int status = 0;
    long e = SC(SYS_wait4, -1, &status, 0);
    if (e < 0) return fail("vsock-par", "wait", e);
    failed += (status & 0x7f) ? count / k : (status >> 8) & 0xff;
  }
  long ms = now_ms() - t0;
  say("KT vsock-par ok connections ");
  saynum(count - failed);
  say(" clients ");
  saynum(k);
  say(" ms ");
  saynum(ms);
  say("\n");
}

/* listen on a port, accept one connection, echo what it sends in upper case until EOF */
static void test_vsock_listen(const char *arg) {
  const char *what;
  long s = vsock_listen((u32)parse_num(arg), &what);
  if (s < 0) return fail("vsock-listen", what, s);
  say("KT vsock-listen ready\n");
  long c = SC(SYS_accept, s, 0, 0);
  SC(SYS_close, s, 0, 0);
  if (c < 0) return fail("vsock-listen", "accept", c);
  u32 h;
  long total = echo_upper(c, buf, 65536, &h);
  SC(SYS_close, c, 0, 0);
  say("KT vsock-listen ok bytes ");
  saynum(total);
  say(" fnv ");
  puthex32(h);
  say("\n");
}

/* ---- net: HTTP GET over TCP (the kernel's ip=dhcp configured eth0); arg IP:PORT/PATH ---- */
static void test_net(const char *arg) {
  const char *p = arg;
  u32 ip = parse_ip(&p);
  if (!ip || *p != ':') return fail("net", "bad argument", 0);
  p++;
  unsigned long port = parse_num(p);
  while (*p && *p != '/') p++;
  if (!*p) p = "/";
  long t0 = now_ms();
  long s = tcp_connect(ip, port);
  if (s < 0) return fail("net", "connect", s);
  u32 h = 0;
  long body = http_get(s, p, buf, 65536, &h);
  SC(SYS_close, s, 0, 0);
  if (body < 0) return fail("net", body == -1 ? "no HTTP header end" : "read", body);
  say("KT net ok body ");
  saynum(body);
  say(" fnv ");
  puthex32(h);
  say(" ms ");
  saynum(now_ms() - t0);
  say("\n");
}

/* arg IP:PORT:KIB — send KIB KiB of a pattern over TCP, half-close, print the server's reply */
static void test_net_send(const char *arg) {
  const char *p = arg;
  u32 ip = parse_ip(&p);
  if (!ip || *p != ':') return fail("net-send", "bad argument", 0);
  unsigned long port = parse_num(++p);
  while (*p && *p != ':') p++;
  long kib = *p == ':' ? (long)parse_num(p + 1) : 0;
  if (kib <= 0) return fail("net-send", "bad argument", 0);
  for (long i = 0; i < 65536; i++) buf[i] = (u8)(i * 31 + (i >> 8));
  long t0 = now_ms();
  long s = tcp_connect(ip, port);
  if (s < 0) return fail("net-send", "connect", s);
  for (long left = kib * 1024; left > 0; left -= 65536) {
    long e = write_all(s, buf, left < 65536 ? left : 65536);
    if (e < 0) {
      SC(SYS_close, s, 0, 0);
      return fail("net-send", "write", e);
    }
  }
  SC(SYS_shutdown, s, 1 /* SHUT_WR */, 0);
  long got = 0, n;
  while (got < 200 && (n = SC(SYS_read, s, buf2 + got, 200 - got)) > 0) got += n;
  SC(SYS_close, s, 0, 0);
  buf2[got] = 0;
  if (got && buf2[got - 1] == '\n') buf2[got - 1] = 0;
  say("KT net-send ok reply ");
  say((const char *)buf2);
  say(" ms ");
  saynum(now_ms() - t0);
  say("\n");
}

static void mount_basics(void) {
  SC(SYS_mkdirat, AT_FDCWD, "/dev", 0755);
  sc6(SYS_mount, (long)"devtmpfs", (long)"/dev", (long)"devtmpfs", 0, 0, 0);
  long fd = SC(SYS_openat, AT_FDCWD, "/dev/console", O_WRONLY | O_NOCTTY);
  if (fd >= 0) out = (int)fd;
  SC(SYS_mkdirat, AT_FDCWD, "/proc", 0755);
  sc6(SYS_mount, (long)"proc", (long)"/proc", (long)"proc", 0, 0, 0);
  SC(SYS_mkdirat, AT_FDCWD, "/sys", 0755);
  sc6(SYS_mount, (long)"sysfs", (long)"/sys", (long)"sysfs", 0, 0, 0);
}

static char cmdline[4096];

int kitset_main(void) {
  mount_basics();
  say("KT start\n");
  long fd = SC(SYS_openat, AT_FDCWD, "/proc/cmdline", O_RDONLY);
  long n = fd >= 0 ? SC(SYS_read, fd, cmdline, sizeof cmdline - 1) : 0;
  if (n < 0) n = 0;
  cmdline[n] = 0;
  /* find kitset.test=... and walk its comma-separated checks */
  char *p = cmdline;
  while (*p && !startswith(p, "kitset.test=")) {
    while (*p && *p != ' ') p++;
    while (*p == ' ') p++;
  }
  if (*p) p += 12;
  while (*p && *p != ' ' && *p != '\n') {
    char item[160];
    size_t i = 0;
    while (*p && *p != ',' && *p != ' ' && *p != '\n' && i < sizeof item - 1) item[i++] = *p++;
    item[i] = 0;
    if (*p == ',') p++;
    char *arg = item;
    while (*arg && *arg != ':') arg++;
    if (*arg == ':') *arg++ = 0;
    if (streq(item, "rng")) test_rng();
    else if (streq(item, "console")) test_console(arg);
    else if (streq(item, "blk")) test_blk(arg);
    else if (streq(item, "9p")) test_9p(arg);
    else if (streq(item, "vsock")) test_vsock_connect(arg);
    else if (streq(item, "vsock-refused")) test_vsock_refused(arg);
    else if (streq(item, "vsock-listen")) test_vsock_listen(arg);
    else if (streq(item, "vsock-many")) test_vsock_many(arg);
    else if (streq(item, "vsock-par")) test_vsock_par(arg);
    else if (streq(item, "net")) test_net(arg);
    else if (streq(item, "net-send")) test_net_send(arg);
    else {
      say("KT ");
      say(item);
      say(" FAIL unknown check\n");
    }
  }
  say("KT done\n");
  return power_off("KT");
}
