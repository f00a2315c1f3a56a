/* fdkinds — holds one kind of file descriptor across a checkpoint (a plain C program that
 * knows nothing of mana).
 *
 *   fdkinds OUT STEPS SLEEP_MS KIND
 *
 * KIND: pipe | socket | fifo:PATH | eventfd | epoll | timerfd | signalfd | devices.
 * "devices" keeps /dev/null, /dev/zero and /dev/urandom open and uses them on every step, so
 * a restart must have reopened them. The other kinds are created at the start and merely held
 * (a restart with --drop-unrestorable-fds leaves them closed, which the program never notices).
 * Each step appends a line to OUT; the exit status is derived from the final state.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(99);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: fdkinds OUT STEPS SLEEP_MS KIND\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) die(argv[1]);
  long steps = atol(argv[2]), ms = atol(argv[3]);
  const char *kind = argv[4];
  int fds[2] = {-1, -1};
  int devnull = -1, zero = -1, urandom = -1;
  if (strcmp(kind, "pipe") == 0) {
    if (pipe(fds) != 0) die("pipe");
  } else if (strcmp(kind, "socket") == 0) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) die("socketpair");
  } else if (strncmp(kind, "fifo:", 5) == 0) {
    unlink(kind + 5);
    if (mkfifo(kind + 5, 0600) != 0) die("mkfifo");
    fds[0] = open(kind + 5, O_RDWR); /* O_RDWR: does not block waiting for a writer */
    if (fds[0] < 0) die("open fifo");
  } else if (strcmp(kind, "eventfd") == 0) {
    fds[0] = eventfd(0, 0);
  } else if (strcmp(kind, "epoll") == 0) {
    fds[0] = epoll_create1(0);
  } else if (strcmp(kind, "timerfd") == 0) {
    fds[0] = timerfd_create(CLOCK_MONOTONIC, 0);
  } else if (strcmp(kind, "signalfd") == 0) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGWINCH);
    fds[0] = signalfd(-1, &s, 0);
  } else if (strcmp(kind, "devices") == 0) {
    devnull = open("/dev/null", O_WRONLY);
    zero = open("/dev/zero", O_RDONLY);
    urandom = open("/dev/urandom", O_RDONLY);
    if (devnull < 0 || zero < 0 || urandom < 0) die("open /dev/...");
  } else {
    fprintf(stderr, "fdkinds: unknown KIND %s\n", kind);
    return 2;
  }
  if (devnull < 0 && fds[0] < 0) die(kind);
  uint64_t sum = 0;
  for (long i = 0; i < steps; i++) {
    if (devnull >= 0) {
      unsigned char z[64], r[16];
      if (read(zero, z, sizeof z) != (ssize_t)sizeof z) die("read /dev/zero");
      for (size_t k = 0; k < sizeof z; k++) sum += z[k];
      if (read(urandom, r, sizeof r) != (ssize_t)sizeof r) die("read /dev/urandom");
      if (write(devnull, r, sizeof r) != (ssize_t)sizeof r) die("write /dev/null");
    }
    sum = sum * 31 + (uint64_t)i;
    fprintf(out, "step %ld sum %llu\n", i, (unsigned long long)sum);
    fflush(out);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  fclose(out);
  return (int)(sum % 200);
}
