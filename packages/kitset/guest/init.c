/*
 * kitset's guest /init: a tiny command runner for the riscv64 guest that `kitset run` boots.
 *
 * The kernel has already configured eth0 by DHCP (`ip=dhcp` on the command line: the kernel's own
 * DHCP client). This init mounts /dev, /proc and /sys, mounts the DataKit tree (9P tag `datakit`) on
 * /datakit and the shared host directory (tag `share`, when present) on /share, then runs the
 * commands of `kitset.run="CMD ARGS;CMD ARGS;..."` from the kernel command line, or, without it, reads
 * commands from the console after a `kitset# ` prompt. Every command prints one result line,
 * `KS <cmd> ok ...` or `KS <cmd> FAIL ...`; the run ends with `KS exit <failures>` and a power-off.
 *
 * The work is done by the kernel: its TCP/IP stack (sockets), its 9P client (mount), its vsock.
 * Built static with no C library (raw system calls) so the initramfs stays a few KiB.
 */

#include "nolibc.h"

#define SOL_SOCKET 1
#define SO_REUSEADDR 2
#define SO_RCVTIMEO 20
#define SIOCGIFADDR 0x8915
#define SHUT_WR 1

static int in = 0;
static int failures = 0;

static void sayhex32(u32 v) {
  static const char hx[] = "0123456789abcdef";
  char b[9];
  for (int i = 0; i < 8; i++) b[i] = hx[(v >> (28 - 4 * i)) & 15];
  b[8] = 0;
  say(b);
}
static void sayip(u32 netorder) {
  const u8 *b = (const u8 *)&netorder;
  for (int i = 0; i < 4; i++) {
    if (i) say(".");
    saynum(b[i]);
  }
}
static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
  SC(SYS_nanosleep, &t, 0, 0);
}

static void fail(const char *cmd, const char *what, long err) {
  failures++;
  say("KS ");
  say(cmd);
  say(" FAIL ");
  say(what);
  say(" errno ");
  saynum(-err);
  say("\n");
}
static void ok(const char *cmd) {
  say("KS ");
  say(cmd);
  say(" ok");
}

static u8 buf[65536];

/* Reads a whole small file into buf (NUL-terminated); returns its length or -errno. */
static long read_small(const char *path) {
  long fd = SC(SYS_openat, AT_FDCWD, path, O_RDONLY);
  if (fd < 0) return fd;
  long total = 0, n;
  while (total < (long)sizeof buf - 1 && (n = SC(SYS_read, fd, buf + total, sizeof buf - 1 - total)) > 0) total += n;
  SC(SYS_close, fd, 0, 0);
  buf[total] = 0;
  return total;
}

/* ---- net: the address the kernel's DHCP client configured, and what /proc/net/pnp says ---- */
struct ifreq {
  char name[16];
  struct sockaddr_in addr;
  u8 pad[8];
};
static u32 nameserver(void) {
  if (read_small("/proc/net/pnp") < 0) return 0;
  const char *p = (const char *)buf;
  while (*p) {
    if (startswith(p, "nameserver ")) {
      p += 11;
      return parse_ip(&p);
    }
    while (*p && *p != '\n') p++;
    if (*p) p++;
  }
  return 0;
}
static void cmd_net(void) {
  long s = SC(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return fail("net", "socket", s);
  struct ifreq r;
  memset(&r, 0, sizeof r);
  memcpy(r.name, "eth0", 5);
  long e = SC(SYS_ioctl, s, SIOCGIFADDR, &r);
  SC(SYS_close, s, 0, 0);
  if (e < 0) return fail("net", "SIOCGIFADDR eth0", e);
  ok("net");
  say(" addr ");
  sayip(r.addr.addr);
  say(" nameserver ");
  sayip(nameserver());
  say("\n");
}

/* ---- dns NAME: an A query over UDP to the nameserver DHCP gave, first answer printed ---- */
static void cmd_dns(const char *name) {
  u32 ns = nameserver();
  if (!ns) return fail("dns", "no nameserver in /proc/net/pnp", 0);
  u8 q[300];
  size_t n = 0;
  u16 id = (u16)(now_ms() & 0xffff);
  q[n++] = (u8)(id >> 8), q[n++] = (u8)id;
  q[n++] = 1, q[n++] = 0; /* recursion desired */
  q[n++] = 0, q[n++] = 1; /* one question */
  for (int i = 0; i < 6; i++) q[n++] = 0;
  const char *p = name;
  while (*p && n < 260) {
    size_t len = 0;
    while (p[len] && p[len] != '.') len++;
    if (len == 0 || len > 63) return fail("dns", "bad name", 0);
    q[n++] = (u8)len;
    for (size_t i = 0; i < len; i++) q[n++] = (u8)p[i];
    p += len;
    if (*p == '.') p++;
  }
  q[n++] = 0;
  q[n++] = 0, q[n++] = 1; /* A */
  q[n++] = 0, q[n++] = 1; /* IN */
  long s = SC(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return fail("dns", "socket", s);
  struct timespec tv = {2, 0};
  sc6(SYS_setsockopt, s, SOL_SOCKET, SO_RCVTIMEO, (long)&tv, sizeof tv, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.family = AF_INET;
  a.port = htons(53);
  a.addr = ns;
  long t0 = now_ms();
  long got = -11;
  for (int attempt = 0; attempt < 3 && got < 0; attempt++) {
    long e = sc6(SYS_sendto, s, (long)q, (long)n, 0, (long)&a, sizeof a);
    if (e < 0) {
      SC(SYS_close, s, 0, 0);
      return fail("dns", "sendto", e);
    }
    got = sc6(SYS_recvfrom, s, (long)buf, 1500, 0, 0, 0);
  }
  SC(SYS_close, s, 0, 0);
  if (got < 12) return fail("dns", "no answer", got < 0 ? got : 0);
  if (buf[0] != q[0] || buf[1] != q[1]) return fail("dns", "wrong id", 0);
  int rcode = buf[3] & 15;
  int answers = (buf[6] << 8) | buf[7];
  /* skip the question, then walk the answers for the first A record */
  size_t i = 12;
  while (i < (size_t)got && buf[i]) i += (size_t)buf[i] + 1;
  i += 5;
  for (int k = 0; k < answers && i + 12 <= (size_t)got; k++) {
    if ((buf[i] & 0xc0) == 0xc0) i += 2;
    else {
      while (i < (size_t)got && buf[i]) i += (size_t)buf[i] + 1;
      i++;
    }
    if (i + 10 > (size_t)got) break;
    int type = (buf[i] << 8) | buf[i + 1];
    size_t rdlen = (size_t)((buf[i + 8] << 8) | buf[i + 9]);
    i += 10;
    if (type == 1 && rdlen == 4 && i + 4 <= (size_t)got) {
      u32 addr;
      memcpy(&addr, buf + i, 4);
      ok("dns");
      say(" ");
      say(name);
      say(" ");
      sayip(addr);
      say(" ms ");
      saynum(now_ms() - t0);
      say("\n");
      return;
    }
    i += rdlen;
  }
  fail("dns", rcode ? "error rcode" : "no A record", -rcode);
}

/* ---- get IP:PORT/PATH: HTTP/1.0 GET, body length and FNV-1a of the body ---- */
static void cmd_get(const char *arg) {
  const char *p = arg;
  u32 ip = parse_ip(&p);
  if (!ip || *p != ':') return fail("get", "usage: get IP:PORT/PATH", 0);
  p++;
  unsigned long port = parse_num(p);
  while (*p && *p != '/') p++;
  if (!*p) p = "/";
  long t0 = now_ms();
  long s = tcp_connect(ip, port);
  if (s < 0) return fail("get", "connect", s);
  u32 h = 0;
  long body = http_get(s, p, buf, sizeof buf, &h);
  SC(SYS_close, s, 0, 0);
  if (body == -1) return fail("get", "no HTTP header end", 0);
  if (body < 0) return fail("get", "read", body);
  ok("get");
  say(" bytes ");
  saynum(body);
  say(" fnv ");
  sayhex32(h);
  say(" ms ");
  saynum(now_ms() - t0);
  say("\n");
}

/* ---- send IP:PORT MIB: write MIB MiB of a pattern to a TCP server, then close ---- */
static void cmd_send(const char *target, const char *mib_text) {
  const char *p = target;
  u32 ip = parse_ip(&p);
  if (!ip || *p != ':') return fail("send", "usage: send IP:PORT MIB", 0);
  p++;
  unsigned long port = parse_num(p);
  long mib = (long)parse_num(mib_text);
  if (mib <= 0) return fail("send", "usage: send IP:PORT MIB", 0);
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (u8)(i * 31 + (i >> 8));
  long t0 = now_ms();
  long s = tcp_connect(ip, port);
  if (s < 0) return fail("send", "connect", s);
  long e;
  long chunks = mib * (1048576 / (long)sizeof buf);
  for (long i = 0; i < chunks; i++) {
    e = write_all(s, buf, sizeof buf);
    if (e < 0) {
      SC(SYS_close, s, 0, 0);
      return fail("send", "write", e);
    }
  }
  /* A close would return with data still queued in the kernel, lost if the guest powers off next:
     half-close and wait for the peer's close, which comes after it has read everything. */
  SC(SYS_shutdown, s, SHUT_WR, 0);
  while ((e = SC(SYS_read, s, buf, sizeof buf)) > 0) {
  }
  SC(SYS_close, s, 0, 0);
  if (e < 0) return fail("send", "waiting for the peer to close", e);
  ok("send");
  say(" bytes ");
  saynum(mib * 1048576);
  say(" ms ");
  saynum(now_ms() - t0);
  say("\n");
}

/* ---- read FILE / drain FILE: read a file through to the end; size, time and (read) FNV-1a ---- */
/* drain reads in 512 KiB read()s and hashes nothing: what a 9P read costs the guest without the per-byte
 * work (FNV-1a is the most of `read` on an emulated CPU); each read() is one or a few Treads of msize. */
static u8 drain_buf[512 * 1024];
static void cmd_read(const char *cmd, const char *path, int hash) {
  u8 *into = hash ? buf : drain_buf;
  long size = hash ? (long)sizeof buf : (long)sizeof drain_buf;
  long t0 = now_ms();
  long fd = SC(SYS_openat, AT_FDCWD, path, O_RDONLY);
  if (fd < 0) return fail(cmd, path, fd);
  long n, total = 0;
  u32 h = FNV_INIT;
  while ((n = SC(SYS_read, fd, into, size)) > 0) {
    if (hash) h = fnv(h, into, (size_t)n);
    total += n;
  }
  SC(SYS_close, fd, 0, 0);
  if (n < 0) return fail(cmd, path, n);
  ok(cmd);
  say(" bytes ");
  saynum(total);
  if (hash) {
    say(" fnv ");
    sayhex32(h);
  }
  say(" ms ");
  saynum(now_ms() - t0);
  say("\n");
}

/* ---- serve PORT: answer one HTTP request on a TCP port with a fixed body ---- */
static void cmd_serve(const char *arg) {
  unsigned long port = parse_num(arg);
  long s = SC(SYS_socket, AF_INET, SOCK_STREAM, 0);
  if (s < 0) return fail("serve", "socket", s);
  int one = 1;
  sc6(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, (long)&one, sizeof one, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.family = AF_INET;
  a.port = htons(port);
  long e = SC(SYS_bind, s, &a, sizeof a);
  if (e < 0) return fail("serve", "bind", e);
  e = SC(SYS_listen, s, 4, 0);
  if (e < 0) return fail("serve", "listen", e);
  say("KS serve listening ");
  saynum((long)port);
  say("\n");
  long c = SC(SYS_accept, s, 0, 0);
  SC(SYS_close, s, 0, 0);
  if (c < 0) return fail("serve", "accept", c);
  long n, total = 0;
  int state = 0;
  while (state < 4 && (n = SC(SYS_read, c, buf, sizeof buf)) > 0) {
    total += n;
    for (long i = 0; i < n && state < 4; i++)
      state = (buf[i] == (state % 2 == 0 ? '\r' : '\n')) ? state + 1 : (buf[i] == '\r' ? 1 : 0);
  }
  const char *reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the kitset guest\n";
  write_all(c, (const u8 *)reply, (long)slen(reply));
  SC(SYS_close, c, 0, 0);
  ok("serve");
  say(" request-bytes ");
  saynum(total);
  say("\n");
}

/* ---- vsock-echo PORT: accept one vsock connection, echo it back in upper case until EOF ---- */
static void cmd_vsock_echo(const char *arg) {
  const char *what;
  long s = vsock_listen((u32)parse_num(arg), &what);
  if (s < 0) return fail("vsock-echo", what, s);
  say("KS vsock-echo listening ");
  saynum((long)parse_num(arg));
  say("\n");
  long c = SC(SYS_accept, s, 0, 0);
  SC(SYS_close, s, 0, 0);
  if (c < 0) return fail("vsock-echo", "accept", c);
  u32 h;
  long total = echo_upper(c, buf, sizeof buf, &h);
  /* As in send: vsock queues what was written for a kernel worker, so a close right before the power-off
     could lose the echo. Half-close and wait (at most 5 s) for the host's close, which follows its EOF. */
  struct timespec tv = {5, 0};
  sc6(SYS_setsockopt, c, SOL_SOCKET, SO_RCVTIMEO, (long)&tv, sizeof tv, 0);
  SC(SYS_shutdown, c, SHUT_WR, 0);
  while (SC(SYS_read, c, buf, sizeof buf) > 0) {
  }
  SC(SYS_close, c, 0, 0);
  ok("vsock-echo");
  say(" bytes ");
  saynum(total);
  say("\n");
}

/* ---- files (on the 9P mounts) ---- */
static void cmd_mkdir(const char *path) {
  long e = SC(SYS_mkdirat, AT_FDCWD, path, 0755);
  if (e < 0 && e != -17) return fail("mkdir", path, e);
  ok("mkdir");
  say(" ");
  say(path);
  say("\n");
}
/* write PATH TEXT...: TEXT and a newline, as `echo TEXT > PATH` would */
static void cmd_write(const char *path, const char *text) {
  long fd = SC(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC);
  if (fd < 0) return fail("write", path, fd);
  size_t n = slen(text);
  u8 line[512];
  if (n > sizeof line - 1) n = sizeof line - 1;
  memcpy(line, text, n);
  line[n++] = '\n';
  long e = write_all(fd, line, (long)n);
  long c = SC(SYS_close, fd, 0, 0);
  if (e < 0) return fail("write", path, e);
  if (c < 0) return fail("write", "close", c);
  ok("write");
  say(" ");
  say(path);
  say("\n");
}
static void cmd_cat(const char *path) {
  long n = read_small(path);
  if (n < 0) return fail("cat", path, n);
  say((const char *)buf);
  if (n > 0 && buf[n - 1] != '\n') say("\n");
  ok("cat");
  say(" ");
  say(path);
  say(" bytes ");
  saynum(n);
  say("\n");
}
struct dirent64 {
  unsigned long ino;
  long off;
  u16 reclen;
  u8 type;
  char name[];
};
static void cmd_ls(const char *path) {
  long fd = SC(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return fail("ls", path, fd);
  long n;
  while ((n = SC(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(buf + off);
      if (!streq(d->name, ".") && !streq(d->name, "..")) {
        say(d->name);
        say("\n");
      }
      off += d->reclen;
    }
  }
  SC(SYS_close, fd, 0, 0);
  if (n < 0) return fail("ls", path, n);
  ok("ls");
  say(" ");
  say(path);
  say("\n");
}

/* msize 512000: the most Linux 6.1's virtio transport takes (125 pages), against its 8 KiB default, so a
 * big read() is a few large Treads, each read straight into the reader's pages (zero-copy). */
static int mount_9p(const char *tag, const char *dir) {
  SC(SYS_mkdirat, AT_FDCWD, dir, 0755);
  return (int)sc6(SYS_mount, (long)tag, (long)dir, (long)"9p", 0,
                  (long)"trans=virtio,version=9p2000.L,msize=512000,cache=none", 0);
}

#define SYS_dup3 24
#define SYS_faccessat 48
#define SYS_setsid 157
#define TIOCSCTTY 0x540e
#define TIOCSWINSZ 0x5414

struct winsize {
  u16 rows, cols, xpixel, ypixel;
};
/* The host terminal's size (`kitset.winsize=ROWSxCOLS`), so the shell's line editing wraps where the terminal does. */
static struct winsize console_size;

/* Runs busybox's /bin/sh (when the initramfs has it) with `-c SCRIPT`, or interactively on the console
 * when SCRIPT is empty, and waits for it: the guest's own tools (udhcpc, wget, ip, md5sum...) do the work.
 * The interactive shell leads a session of its own with the console as its controlling tty, so it has job
 * control and Ctrl-C interrupts the command it runs rather than nothing. */
static void cmd_sh(const char *script) {
  static const char *const env[] = {"PATH=/sbin:/bin:/usr/sbin:/usr/bin", "HOME=/root", "TERM=vt100",
                                    "PS1=kitset:\\w\\$ ", "SHELL=/bin/sh", 0};
  const char *argv[] = {"sh", 0, 0, 0};
  if (*script) argv[1] = "-c", argv[2] = script;
  long pid = sc6(SYS_clone, 17 /* SIGCHLD */, 0, 0, 0, 0, 0);
  if (pid == 0) {
    if (!*script) {
      SC(SYS_setsid, 0, 0, 0);
      SC(SYS_ioctl, in, TIOCSCTTY, 1);
      if (console_size.rows) SC(SYS_ioctl, in, TIOCSWINSZ, &console_size);
      for (int fd = 0; fd < 3; fd++)
        if (fd != in) SC(SYS_dup3, in, fd, 0);
    }
    long e = SC(SYS_execve, "/bin/sh", argv, env);
    fail("sh", "exec /bin/sh (no busybox in this initramfs?) errno", e);
    SC(SYS_exit, 127, 0, 0);
  }
  if (pid < 0) {
    fail("sh", "fork errno", pid);
    return;
  }
  int status = 0;
  long e = SC(SYS_wait4, pid, &status, 0);
  if (e < 0) fail("sh", "wait errno", e);
  else if ((status & 0xffff) != 0) {
    failures++;
    say("KS sh FAIL ");
    say((status & 0x7f) ? "signal " : "exit ");
    saynum((status & 0x7f) ? (status & 0x7f) : (status >> 8) & 0xff);
    say("\n");
  } else {
    ok("sh");
    say("\n");
  }
}

static void help(void) {
  say("commands: net | dns NAME | get IP:PORT/PATH | send IP:PORT MIB | serve PORT | vsock-echo PORT |\n"
      "          ls DIR | cat FILE | read FILE | drain FILE | mkdir DIR | write FILE TEXT... | sleep MS | help | poweroff |\n"
      "          sh [SCRIPT] (busybox's shell; without SCRIPT an interactive one, `exit` returns here)\n"
      "the DataKit tree is on /datakit, a shared host directory on /share\n");
}

/* Runs one command line (words separated by spaces). Returns 0 to stop. */
static int run(char *line) {
  char *w[3] = {0, 0, 0};
  int nw = 0;
  char *p = line;
  while (*p == ' ') p++;
  if (startswith(p, "sh") && (p[2] == 0 || p[2] == ' ')) { /* the whole rest of the line is the script */
    p += 2;
    while (*p == ' ') p++;
    cmd_sh(p);
    return 1;
  }
  while (*p && nw < 3) {
    w[nw++] = p;
    if (nw == 3) break; /* the third word keeps the rest of the line (write's TEXT) */
    while (*p && *p != ' ') p++;
    if (*p) *p++ = 0;
    while (*p == ' ') p++;
  }
  if (nw == 0) return 1;
  const char *c = w[0];
  const char *a1 = w[1] ? w[1] : "";
  const char *a2 = w[2] ? w[2] : "";
  if (streq(c, "net")) cmd_net();
  else if (streq(c, "dns")) cmd_dns(a1);
  else if (streq(c, "get")) cmd_get(a1);
  else if (streq(c, "serve")) cmd_serve(a1);
  else if (streq(c, "send")) cmd_send(a1, a2);
  else if (streq(c, "read")) cmd_read("read", a1, 1);
  else if (streq(c, "drain")) cmd_read("drain", a1, 0);
  else if (streq(c, "vsock-echo")) cmd_vsock_echo(a1);
  else if (streq(c, "mkdir")) cmd_mkdir(a1);
  else if (streq(c, "write")) cmd_write(a1, a2);
  else if (streq(c, "cat")) cmd_cat(a1);
  else if (streq(c, "ls")) cmd_ls(a1);
  else if (streq(c, "sleep")) sleep_ms((long)parse_num(a1));
  else if (streq(c, "help")) help();
  else if (streq(c, "poweroff") || streq(c, "exit")) return 0;
  else {
    failures++;
    say("KS ");
    say(c);
    say(" FAIL unknown command (try help)\n");
  }
  return 1;
}

static char cmdline[4096];
static char line[1024];

/* Whether the command line has `word` as a whole word. */
static int has_word(const char *s, const char *word) {
  while (*s) {
    if (startswith(s, word)) {
      char after = s[slen(word)];
      if (after == 0 || after == ' ' || after == '\n') return 1;
    }
    while (*s && *s != ' ') s++;
    while (*s == ' ') s++;
  }
  return 0;
}

/* Without commands: busybox's interactive shell when the initramfs has it (`exit` powers off), else a
 * `kitset#` prompt for init's own commands. The console tty is in canonical mode with echo (the kernel's
 * defaults), so the prompt's reads return whole lines. */
static void interactive(void) {
  if (SC(SYS_faccessat, AT_FDCWD, "/bin/sh", 1 /* X_OK */) == 0) {
    say("KS shell (busybox sh; exit powers the guest off)\n");
    cmd_sh("");
    return;
  }
  help();
  for (;;) {
    say("kitset# ");
    size_t n = 0;
    for (;;) {
      char ch;
      long r = SC(SYS_read, in, &ch, 1);
      if (r <= 0) return;
      if (ch == '\n' || ch == '\r') break;
      if (n < sizeof line - 1) line[n++] = ch;
    }
    line[n] = 0;
    if (!run(line)) return;
  }
}

int kitset_main(void) {
  SC(SYS_mkdirat, AT_FDCWD, "/dev", 0755);
  sc6(SYS_mount, (long)"devtmpfs", (long)"/dev", (long)"devtmpfs", 0, 0, 0);
  long fd = SC(SYS_openat, AT_FDCWD, "/dev/console", O_RDWR | O_NOCTTY);
  if (fd >= 0) out = in = (int)fd;
  SC(SYS_mkdirat, AT_FDCWD, "/proc", 0755);
  sc6(SYS_mount, (long)"proc", (long)"/proc", (long)"proc", 0, 0, 0);
  SC(SYS_mkdirat, AT_FDCWD, "/sys", 0755);
  sc6(SYS_mount, (long)"sysfs", (long)"/sys", (long)"sysfs", 0, 0, 0);
  SC(161 /* SYS_sethostname */, "kitset", 6, 0);
  say("KS up\n");
  long e = mount_9p("datakit", "/datakit");
  if (e == 0) say("KS mount ok datakit on /datakit\n");
  else { /* without the device (ENOENT) the guest still runs, without DataKit */
    if (e != -2) failures++;
    say("KS mount FAIL datakit on /datakit errno ");
    saynum(-e);
    say("\n");
  }
  long n = read_small("/proc/cmdline");
  if (n < 0) n = 0;
  memcpy(cmdline, buf, (size_t)n < sizeof cmdline ? (size_t)n : sizeof cmdline - 1);
  cmdline[(size_t)n < sizeof cmdline ? (size_t)n : sizeof cmdline - 1] = 0;
  if (has_word(cmdline, "kitset.share")) {
    e = mount_9p("share", "/share");
    if (e == 0) say("KS mount ok share on /share\n");
    else fail("mount", "share on /share", e);
  }
  for (const char *w = cmdline; *w;) {
    if (startswith(w, "kitset.winsize=")) {
      w += 15;
      console_size.rows = (u16)parse_num(w);
      while (*w >= '0' && *w <= '9') w++;
      if (*w == 'x') console_size.cols = (u16)parse_num(w + 1);
      if (!console_size.cols) console_size.rows = 0;
    }
    while (*w && *w != ' ') w++;
    while (*w == ' ') w++;
  }
  char *p = cmdline;
  while (*p && !startswith(p, "kitset.run=")) {
    while (*p && *p != ' ') p++;
    while (*p == ' ') p++;
  }
  if (*p) {
    p += 11;
    char end = ' ';
    if (*p == '"') end = '"', p++;
    while (*p && *p != end && *p != '\n') {
      size_t i = 0;
      while (*p && *p != ';' && *p != end && *p != '\n' && i < sizeof line - 1) line[i++] = *p++;
      line[i] = 0;
      if (*p == ';') p++;
      if (!run(line)) break;
    }
  } else {
    interactive();
  }
  say("KS exit ");
  saynum(failures);
  say("\n");
  return power_off("KS");
}
