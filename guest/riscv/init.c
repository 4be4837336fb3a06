/*
 * Kitset test guest's /init: mounts /proc, /sys and /dev, prints the marker line
 * "KITSET-INIT-OK" and the kernel's uname on the console, then powers the machine off.
 *
 * Built static with no C library (raw RISC-V Linux system calls) so it is a few kilobytes,
 * starts in a handful of instructions and behaves the same on every emulator.
 */

#define SYS_mkdirat 34
#define SYS_mount 40
#define SYS_openat 56
#define SYS_write 64
#define SYS_exit 93
#define SYS_reboot 142
#define SYS_uname 160

#define AT_FDCWD (-100)
#define O_WRONLY 01
#define O_NOCTTY 0400
#define EBUSY 16
#define EEXIST 17

#define LINUX_REBOOT_MAGIC1 0xfee1deadL
#define LINUX_REBOOT_MAGIC2 672274793L
#define LINUX_REBOOT_CMD_POWER_OFF 0x4321fedcL

struct utsname {
  char sysname[65];
  char nodename[65];
  char release[65];
  char version[65];
  char machine[65];
  char domainname[65];
};

static long syscall5(long number, long a, long b, long c, long d, long e) {
  register long a0 __asm__("a0") = a;
  register long a1 __asm__("a1") = b;
  register long a2 __asm__("a2") = c;
  register long a3 __asm__("a3") = d;
  register long a4 __asm__("a4") = e;
  register long a7 __asm__("a7") = number;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a7) : "memory");
  return a0;
}

static int console_fd = 1;

static unsigned long length(const char *s) {
  unsigned long n = 0;
  while (s[n] != '\0') n++;
  return n;
}

static void print(const char *s) {
  syscall5(SYS_write, console_fd, (long)s, (long)length(s), 0, 0);
}

static void print_number(long value) {
  char digits[24];
  int i = sizeof digits - 1;
  int negative = value < 0;
  unsigned long v = negative ? -(unsigned long)value : (unsigned long)value;
  digits[i] = '\0';
  do {
    digits[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (negative) digits[--i] = '-';
  print(&digits[i]);
}

static void mount_or_warn(const char *source, const char *target, const char *type) {
  long err = syscall5(SYS_mkdirat, AT_FDCWD, (long)target, 0755, 0, 0);
  if (err < 0 && err != -EEXIST) {
    print("kitset-init: warning: mkdir ");
    print(target);
    print(" failed: errno ");
    print_number(-err);
    print("\n");
  }
  err = syscall5(SYS_mount, (long)source, (long)target, (long)type, 0, 0);
  /* EBUSY: the kernel already mounted it (devtmpfs automount). */
  if (err < 0 && err != -EBUSY) {
    print("kitset-init: warning: mount ");
    print(type);
    print(" on ");
    print(target);
    print(" failed: errno ");
    print_number(-err);
    print("\n");
  }
}

static struct utsname uts;

int kitset_main(void) {
  mount_or_warn("devtmpfs", "/dev", "devtmpfs");
  /* The kernel opened /dev/console for us if it existed in the initramfs; make sure. */
  long fd = syscall5(SYS_openat, AT_FDCWD, (long)"/dev/console", O_WRONLY | O_NOCTTY, 0, 0);
  if (fd >= 0) console_fd = (int)fd;
  mount_or_warn("proc", "/proc", "proc");
  mount_or_warn("sysfs", "/sys", "sysfs");

  print("KITSET-INIT-OK\n");
  if (syscall5(SYS_uname, (long)&uts, 0, 0, 0, 0) == 0) {
    print("kitset-init: ");
    print(uts.sysname);
    print(" ");
    print(uts.release);
    print(" ");
    print(uts.version);
    print(" ");
    print(uts.machine);
    print("\n");
  }
  print("kitset-init: powering off\n");
  long err = syscall5(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF, 0, 0);
  print("kitset-init: power-off failed: errno ");
  print_number(-err);
  print("\n");
  return 1;
}

/* Entry point: no C runtime to set up; exiting init makes the kernel panic, which is loud. */
__asm__(
    ".section .text._start\n"
    ".global _start\n"
    "_start:\n"
    "  call kitset_main\n"
    "  li a7, 93\n" /* SYS_exit */
    "  ecall\n");
