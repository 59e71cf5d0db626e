/* flood: drives a known number of traced socket syscalls over one loopback TCP
 * connection, for the saturation benchmark.
 *
 *   flood RATE SECONDS MSG_BYTES      (RATE = syscall events/s wanted, 0 = as fast as possible)
 *
 * Protocol with the caller (so kspan can be started with --pid on this process first):
 *   1. prints {"pid":N} and waits for a line on stdin ("go");
 *   2. listens on 127.0.0.1:0, connects, accepts (2 connection-open events), then a writer
 *      thread writes MSG_BYTES messages paced at RATE/2 writes/s while a reader thread
 *      reads them (each write and each read with a result > 0 is one kspan data event);
 *   3. closes both sockets (2 close events), prints the counts as JSON, and waits for EOF
 *      on stdin before exiting, so its own exit is not an event inside the measurement.
 * Bounded: SECONDS of traffic, and at most 30 s waiting for "go".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"

static double g_rate, g_seconds;
static size_t g_msg;
static int g_wfd, g_rfd;
static uint64_t g_writes, g_reads, g_write_bytes, g_read_bytes;
static volatile int g_writer_done;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void* writer(void* arg) {
  (void)arg;
  char* buf = malloc(g_msg);
  memset(buf, 'x', g_msg);
  uint64_t start = now_ns();
  uint64_t end = start + (uint64_t)(g_seconds * 1e9);
  double per_write_ns = g_rate > 0 ? 2e9 / g_rate : 0;
  for (uint64_t i = 0;; i++) {
    uint64_t now = now_ns();
    if (now >= end) break;
    if (per_write_ns > 0) {
      uint64_t due = start + (uint64_t)(per_write_ns * (double)i);
      if (due > now) {
        uint64_t wait = due - now;
        if (wait > 50000) {
          struct timespec ts = {0, (long)(wait - 20000)};
          nanosleep(&ts, NULL);
        }
        while (now_ns() < due) {
        }
      }
    }
    ssize_t r = write(g_wfd, buf, g_msg);
    if (r <= 0) break;
    g_writes++;
    g_write_bytes += (uint64_t)r;
  }
  shutdown(g_wfd, SHUT_WR);
  g_writer_done = 1;
  free(buf);
  return NULL;
}

static void* reader(void* arg) {
  (void)arg;
  char* buf = malloc(g_msg);
  for (;;) {
    ssize_t r = read(g_rfd, buf, g_msg);
    if (r <= 0) break; /* EOF after the writer's shutdown */
    g_reads++;
    g_read_bytes += (uint64_t)r;
  }
  free(buf);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: flood RATE SECONDS MSG_BYTES\n");
    return 2;
  }
  g_rate = atof(argv[1]);
  g_seconds = atof(argv[2]);
  g_msg = (size_t)atol(argv[3]);
  if (g_seconds <= 0 || g_seconds > 60 || g_msg < 1 || g_msg > 65536) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("{\"pid\":%d}\n", getpid());
  if (wait_for_go() != 0) return 1;

  struct sockaddr_in sa;
  int ls = loopback_listener(1, &sa);
  if (ls < 0) return 1;
  g_wfd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(g_wfd, (struct sockaddr*)&sa, sizeof(sa)) != 0) return 1;
  g_rfd = accept(ls, NULL, NULL);
  if (g_rfd < 0) return 1;
  int one = 1;
  setsockopt(g_wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  uint64_t t0 = now_ns();
  pthread_t tw, tr;
  pthread_create(&tr, NULL, reader, NULL);
  pthread_create(&tw, NULL, writer, NULL);
  pthread_join(tw, NULL);
  pthread_join(tr, NULL);
  double elapsed = (double)(now_ns() - t0) / 1e9;
  close(g_wfd);
  close(g_rfd);
  close(ls);
  uint64_t events = 2 + g_writes + g_reads + 2;
  printf(
      "{\"writes\":%lu,\"reads\":%lu,\"write_bytes\":%lu,\"read_bytes\":%lu,\"conn_events\":4,"
      "\"socket_events\":%lu,\"seconds\":%.3f,\"events_per_s\":%.0f}\n",
      (unsigned long)g_writes, (unsigned long)g_reads, (unsigned long)g_write_bytes,
      (unsigned long)g_read_bytes, (unsigned long)events, elapsed, (double)events / elapsed);
  /* Wait (bounded) for the caller to close stdin: kspan has stopped by then. */
  struct pollfd p = {.fd = 0, .events = POLLIN};
  char line[64];
  while (poll(&p, 1, 30000) > 0 && fgets(line, sizeof(line), stdin)) {
  }
  return 0;
}
