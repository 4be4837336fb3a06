// kitset_tap: the few system calls Node lacks for serving a Linux TAP device.
//   open(name, netnsPath?, vnetHdr?, device?) -> { fd, name }  TAP (IFF_TAP|IFF_NO_PI[|IFF_VNET_HDR with checksum and
//                                             TSO offload]), nonblocking; created inside the
//                                             network namespace at netnsPath when given (setns there and back
//                                             on this thread only, so the rest of the process is unaffected)
//   readFrames(fd, buf, lengths, maxFrame) -> count  reads frames back to back until EAGAIN or full
//   writeFrame(fd, buf, length) -> bool               one frame; false when the device queue is full
//   writeFrameV(fd, header, frame, length, tail?)     the same with a virtio-net header in front (vnetHdr)
//   watch(fd, callback) -> handle                     libuv poll for readability on the main loop
//   unwatch(handle), close(fd)
//   icmpOpen() -> { fd, raw }, icmpSend(fd, addr, msg), icmpRecv(fd, buf, from)   ICMP echo for the NAT
//   socketPair() -> [fd, fd]                          AF_UNIX stream pair (close-on-exec) for handing over fds
//   sendFd(socket, fd) -> bool                        one byte carrying fd as SCM_RIGHTS; false on EAGAIN
//   recvFd(socket) -> fd | -1 | -2                    nonblocking: -1 nothing yet, -2 peer closed without one
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <uv.h>

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, "ERR_TAP", "N-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error, errnum;
  napi_create_string_utf8(env, "ERR_TAP", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_throw(env, error);
  return NULL;
}

static int get_int(napi_env env, napi_value value, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok;
}

static int get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  napi_value arraybuffer;
  size_t offset;
  void *raw;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, &arraybuffer, &offset) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = raw;
  return 1;
}

static napi_value tap_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool vnet_hdr = false;
  // The clone device: /dev/net/tun unless told otherwise (a rootless parent may be given another node).
  char device[4096] = "/dev/net/tun";
  napi_valuetype devtype = napi_undefined;
  if (argc >= 4) napi_typeof(env, argv[3], &devtype);
  if (devtype == napi_string) {
    size_t device_len = 0;
    napi_get_value_string_utf8(env, argv[3], device, sizeof device, &device_len);
    if (device_len == 0) strcpy(device, "/dev/net/tun");
  }
  if (argc >= 3) napi_get_value_bool(env, argv[2], &vnet_hdr);
  char name[IFNAMSIZ] = {0};
  size_t name_len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok) {
    napi_throw_type_error(env, "ERR_TAP", "open(name, netnsPath?): name must be a string");
    return NULL;
  }
  char netns[4096] = {0};
  size_t netns_len = 0;
  napi_valuetype nstype = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &nstype);
  if (nstype == napi_string) napi_get_value_string_utf8(env, argv[1], netns, sizeof netns, &netns_len);

  int saved_ns = -1;
  if (netns_len > 0) {
    saved_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ns < 0) return throw_errno(env, "open /proc/thread-self/ns/net", errno);
    int target = open(netns, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      int err = errno;
      close(saved_ns);
      return throw_errno(env, "open network namespace", err);
    }
    if (setns(target, CLONE_NEWNET) < 0) {
      int err = errno;
      close(target);
      close(saved_ns);
      return throw_errno(env, "setns into network namespace (needs CAP_SYS_ADMIN)", err);
    }
    close(target);
  }

  int fd = open(device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  struct ifreq ifr;
  if (fd >= 0) {
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
    memcpy(ifr.ifr_name, name, name_len < IFNAMSIZ - 1 ? name_len : IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      err = errno;
      close(fd);
      fd = -1;
    }
    // With virtio-net headers the kernel may hand us TSO segments and frames whose checksum it vouches
    // for, and takes ours with the checksum left to it.
    int hdr_size = 10;
    if (fd >= 0 && vnet_hdr &&
        (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0 ||
         ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) < 0)) {
      err = errno;
      close(fd);
      fd = -1;
    }
  }
  if (saved_ns >= 0) {
    // Back to the namespace we came from; failing here would leave this thread in the wrong one.
    if (setns(saved_ns, CLONE_NEWNET) < 0) abort();
    close(saved_ns);
  }
  if (fd < 0) {
    char what[4200];
    snprintf(what, sizeof what, "create TAP device (%s, TUNSETIFF)", device);
    return throw_errno(env, what, err);
  }

  napi_value result, fd_value, name_value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, fd, &fd_value));
  CHECK(napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &name_value));
  CHECK(napi_set_named_property(env, result, "fd", fd_value));
  CHECK(napi_set_named_property(env, result, "name", name_value));
  return result;
}

static napi_value tap_read_frames(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, max_frame;
  uint8_t *buf;
  size_t buf_len;
  napi_typedarray_type type;
  size_t lengths_count;
  void *lengths_raw;
  napi_value ab;
  size_t off;
  if (argc < 4 || !get_int(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &buf_len) ||
      napi_get_typedarray_info(env, argv[2], &type, &lengths_count, &lengths_raw, &ab, &off) != napi_ok ||
      type != napi_uint32_array || !get_int(env, argv[3], &max_frame) || max_frame <= 0) {
    napi_throw_type_error(env, "ERR_TAP", "readFrames(fd, Uint8Array, Uint32Array, maxFrame)");
    return NULL;
  }
  uint32_t *lengths = lengths_raw;
  size_t used = 0;
  uint32_t count = 0;
  while (count < lengths_count && buf_len - used >= (size_t)max_frame) {
    ssize_t n = read(fd, buf + used, (size_t)max_frame);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (count > 0) break;  // report the error on the next call, after these frames
      return throw_errno(env, "read TAP", errno);
    }
    if (n == 0) break;
    lengths[count++] = (uint32_t)n;
    used += (size_t)n;
  }
  napi_value result;
  CHECK(napi_create_uint32(env, count, &result));
  return result;
}

static napi_value tap_write_frame(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, length;
  uint8_t *buf;
  size_t buf_len;
  if (argc < 3 || !get_int(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &buf_len) ||
      !get_int(env, argv[2], &length) || length < 0 || (size_t)length > buf_len) {
    napi_throw_type_error(env, "ERR_TAP", "writeFrame(fd, Uint8Array, length)");
    return NULL;
  }
  ssize_t n;
  do n = write(fd, buf, (size_t)length);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EIO)
    return throw_errno(env, "write TAP", errno);
  napi_value result;
  CHECK(napi_get_boolean(env, n == length, &result));
  return result;
}

// writeFrameV(fd, header, frame, length, tail?): one frame from up to three pieces (virtio-net header,
// the frame's first `length` bytes, and a payload tail), so payloads go to the kernel without a copy.
static napi_value tap_write_frame_v(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, length;
  uint8_t *header, *frame, *tail = NULL;
  size_t header_len, frame_len, tail_len = 0;
  if (argc < 4 || !get_int(env, argv[0], &fd) || !get_bytes(env, argv[1], &header, &header_len) ||
      !get_bytes(env, argv[2], &frame, &frame_len) || !get_int(env, argv[3], &length) || length < 0 ||
      (size_t)length > frame_len) {
    napi_throw_type_error(env, "ERR_TAP", "writeFrameV(fd, Uint8Array, Uint8Array, length, tail?)");
    return NULL;
  }
  napi_valuetype tail_type = napi_undefined;
  if (argc >= 5) napi_typeof(env, argv[4], &tail_type);
  if (tail_type != napi_undefined && tail_type != napi_null && !get_bytes(env, argv[4], &tail, &tail_len)) {
    napi_throw_type_error(env, "ERR_TAP", "writeFrameV: tail must be a Uint8Array");
    return NULL;
  }
  struct iovec iov[3] = {{header, header_len}, {frame, (size_t)length}, {tail, tail_len}};
  ssize_t n;
  do n = writev(fd, iov, tail_len > 0 ? 3 : 2);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EIO)
    return throw_errno(env, "write TAP", errno);
  napi_value result;
  CHECK(napi_get_boolean(env, n == (ssize_t)(header_len + (size_t)length + tail_len), &result));
  return result;
}

// ICMP echo for the NAT. An unprivileged ICMP datagram socket where net.ipv4.ping_group_range allows it,
// else a raw socket (root). icmpOpen() -> { fd, raw }.
static napi_value icmp_open(napi_env env, napi_callback_info info) {
  int raw = 0;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) {
    int first = errno;
    fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd < 0) return throw_errno(env, "ICMP socket (datagram not allowed by ping_group_range, raw needs CAP_NET_RAW)", first);
    raw = 1;
  }
  napi_value result, fd_value, raw_value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, fd, &fd_value));
  CHECK(napi_get_boolean(env, raw, &raw_value));
  CHECK(napi_set_named_property(env, result, "fd", fd_value));
  CHECK(napi_set_named_property(env, result, "raw", raw_value));
  return result;
}

// icmpSend(fd, address (uint32, host order), message) -> bool
static napi_value icmp_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t address;
  uint8_t *msg;
  size_t len;
  if (argc < 3 || !get_int(env, argv[0], &fd) || napi_get_value_uint32(env, argv[1], &address) != napi_ok ||
      !get_bytes(env, argv[2], &msg, &len)) {
    napi_throw_type_error(env, "ERR_TAP", "icmpSend(fd, address, Uint8Array)");
    return NULL;
  }
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(address);
  ssize_t n = sendto(fd, msg, len, 0, (struct sockaddr *)&to, sizeof to);
  napi_value result;
  CHECK(napi_get_boolean(env, n == (ssize_t)len, &result));
  return result;
}

// icmpRecv(fd, buf, from: Uint32Array) -> length, or -1 when nothing is waiting. from[0] = source address.
static napi_value icmp_recv(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint8_t *buf;
  size_t len;
  napi_typedarray_type type;
  size_t from_count;
  void *from_raw;
  napi_value ab;
  size_t off;
  if (argc < 3 || !get_int(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &len) ||
      napi_get_typedarray_info(env, argv[2], &type, &from_count, &from_raw, &ab, &off) != napi_ok ||
      type != napi_uint32_array || from_count < 1) {
    napi_throw_type_error(env, "ERR_TAP", "icmpRecv(fd, Uint8Array, Uint32Array)");
    return NULL;
  }
  struct sockaddr_in from;
  socklen_t from_len = sizeof from;
  ssize_t n = recvfrom(fd, buf, len, 0, (struct sockaddr *)&from, &from_len);
  if (n >= 0) ((uint32_t *)from_raw)[0] = ntohl(from.sin_addr.s_addr);
  napi_value result;
  CHECK(napi_create_int32(env, n < 0 ? -1 : (int32_t)n, &result));
  return result;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int stopped;
} watcher_t;

static void on_readable(uv_poll_t *handle, int status, int events) {
  watcher_t *w = handle->data;
  if (w->stopped) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, recv, result, arg;
  if (napi_get_reference_value(env, w->callback, &callback) == napi_ok && callback != NULL) {
    napi_get_global(env, &recv);  // make_callback needs an object receiver
    napi_create_int32(env, status, &arg);
    if (napi_make_callback(env, w->context, recv, callback, 1, &arg, &result) != napi_ok) {
      bool pending = false;
      napi_value error;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &error) == napi_ok)
        napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_closed(uv_handle_t *handle) { free(handle->data); }

static void watcher_finalize(napi_env env, void *data, void *hint) {
  // The JS handle was collected: only free if unwatch already closed the poll handle.
  (void)env;
  (void)data;
  (void)hint;
}

static napi_value tap_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  napi_valuetype t;
  if (argc < 2 || !get_int(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_TAP", "watch(fd, callback)");
    return NULL;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  watcher_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "watch", ENOMEM);
  w->env = env;
  w->poll.data = w;
  CHECK(napi_create_reference(env, argv[1], 1, &w->callback));
  napi_value resource_name, resource;
  CHECK(napi_create_string_utf8(env, "kitset:tap", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_async_init(env, resource, resource_name, &w->context));
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc == 0) rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    free(w);
    napi_throw_error(env, "ERR_TAP", uv_strerror(rc));
    return NULL;
  }
  napi_value handle;
  CHECK(napi_create_external(env, w, watcher_finalize, NULL, &handle));
  return handle;
}

static napi_value tap_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, "ERR_TAP", "unwatch(handle)");
    return NULL;
  }
  watcher_t *w = data;
  if (!w->stopped) {
    w->stopped = 1;
    uv_poll_stop(&w->poll);
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    uv_close((uv_handle_t *)&w->poll, on_closed);
  }
  return NULL;
}

static napi_value tap_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, "ERR_TAP", "close(fd)");
    return NULL;
  }
  close(fd);
  return NULL;
}

static napi_value fd_socket_pair(napi_env env, napi_callback_info info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) return throw_errno(env, "socketpair", errno);
  napi_value result, a, b;
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_int32(env, fds[0], &a));
  CHECK(napi_create_int32(env, fds[1], &b));
  CHECK(napi_set_element(env, result, 0, a));
  CHECK(napi_set_element(env, result, 1, b));
  return result;
}

static napi_value fd_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t sock, fd;
  if (argc < 2 || !get_int(env, argv[0], &sock) || !get_int(env, argv[1], &fd)) {
    napi_throw_type_error(env, "ERR_TAP", "sendFd(socket, fd)");
    return NULL;
  }
  char byte = 'F';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  napi_value result;
  if (n < 0 && errno != EAGAIN) return throw_errno(env, "sendmsg (SCM_RIGHTS)", errno);
  CHECK(napi_get_boolean(env, n == 1, &result));
  return result;
}

static napi_value fd_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t sock;
  if (argc < 1 || !get_int(env, argv[0], &sock)) {
    napi_throw_type_error(env, "ERR_TAP", "recvFd(socket)");
    return NULL;
  }
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 4)];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  int32_t fd = -1;
  if (n < 0) {
    if (errno != EAGAIN) return throw_errno(env, "recvmsg (SCM_RIGHTS)", errno);
  } else if (n == 0) {
    fd = -2;
  } else {
    fd = -2;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (fd < 0) fd = got;
        else close(got); // only one was asked for: never leak extras
      }
    }
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, tap_open, NULL, NULL, NULL, napi_default, NULL},
      {"readFrames", NULL, tap_read_frames, NULL, NULL, NULL, napi_default, NULL},
      {"writeFrame", NULL, tap_write_frame, NULL, NULL, NULL, napi_default, NULL},
      {"writeFrameV", NULL, tap_write_frame_v, NULL, NULL, NULL, napi_default, NULL},
      {"watch", NULL, tap_watch, NULL, NULL, NULL, napi_default, NULL},
      {"unwatch", NULL, tap_unwatch, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, tap_close, NULL, NULL, NULL, napi_default, NULL},
      {"icmpOpen", NULL, icmp_open, NULL, NULL, NULL, napi_default, NULL},
      {"icmpSend", NULL, icmp_send, NULL, NULL, NULL, napi_default, NULL},
      {"icmpRecv", NULL, icmp_recv, NULL, NULL, NULL, napi_default, NULL},
      {"socketPair", NULL, fd_socket_pair, NULL, NULL, NULL, napi_default, NULL},
      {"sendFd", NULL, fd_send, NULL, NULL, NULL, napi_default, NULL},
      {"recvFd", NULL, fd_recv, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
