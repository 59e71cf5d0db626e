/* storm: N short HTTP/1.1 connections to a loopback server, one request each.
 *
 *   storm PORT N WORKERS MAX_SECONDS
 *
 * WORKERS forked processes share the N connections; worker w connects from 127.0.0.(2 + w)
 * so that each source address needs at most N / WORKERS ephemeral ports (100,000 from one
 * address would run into the ~28k ports of the default range and the server's TIME_WAIT).
 * Each connection: connect, send `GET /storm HTTP/1.1` with `Connection: close`, read to
 * EOF, close; it counts as ok when the answer starts with `HTTP/1.1 200`. Prints
 * {"pid":P} first and waits for a line on stdin (bench_net.h), then one JSON line with the
 * totals. Every worker stops at MAX_SECONDS whatever is left; traffic stays on 127.0.0.0/8.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"

#define MAX_WORKERS 64

struct totals {
  uint64_t attempted, ok, errors;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection, one request; 1 when the answer was a 200. */
static int one_request(int w, int port) {
  static const char kRequest[] = "GET /storm HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)w);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  int ok = 0;
  if (bind(fd, (struct sockaddr*)&src, sizeof(src)) == 0 &&
      connect(fd, (struct sockaddr*)&dst, sizeof(dst)) == 0 &&
      write(fd, kRequest, sizeof(kRequest) - 1) == (ssize_t)(sizeof(kRequest) - 1)) {
    char status[16] = {0}; /* the answer's first bytes: "HTTP/1.1 200" */
    size_t have = 0;
    char buf[4096];
    for (;;) {
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r <= 0) break;
      for (ssize_t j = 0; j < r && have < sizeof(status) - 1; j++) status[have++] = buf[j];
    }
    ok = strncmp(status, "HTTP/1.1 200", 12) == 0;
  }
  close(fd);
  return ok;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: storm PORT N WORKERS MAX_SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]);
  long n = atol(argv[2]);
  int workers = atoi(argv[3]);
  double max_s = atof(argv[4]);
  if (port <= 0 || port > 65535 || n < 1 || n > 1000000 || workers < 1 || workers > MAX_WORKERS ||
      max_s <= 0 || max_s > 600)
    return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("{\"pid\":%d}\n", getpid());
  if (wait_for_go() != 0) return 1;

  int pipes[MAX_WORKERS][2];
  pid_t kids[MAX_WORKERS];
  double t0 = now_s();
  for (int w = 0; w < workers; w++) {
    if (pipe(pipes[w]) != 0) return 1;
    kids[w] = fork();
    if (kids[w] < 0) return 1;
    if (kids[w] == 0) {
      struct totals t = {0, 0, 0};
      long share = n / workers + (w < n % workers ? 1 : 0);
      for (long i = 0; i < share && now_s() - t0 < max_s; i++) {
        t.attempted++;
        if (one_request(w, port))
          t.ok++;
        else
          t.errors++;
      }
      ssize_t wr = write(pipes[w][1], &t, sizeof(t));
      _exit(wr == (ssize_t)sizeof(t) ? 0 : 1);
    }
    close(pipes[w][1]);
  }
  struct totals sum = {0, 0, 0};
  for (int w = 0; w < workers; w++) {
    struct totals t = {0, 0, 0};
    if (read(pipes[w][0], &t, sizeof(t)) == (ssize_t)sizeof(t)) {
      sum.attempted += t.attempted;
      sum.ok += t.ok;
      sum.errors += t.errors;
    }
    close(pipes[w][0]);
    waitpid(kids[w], NULL, 0);
  }
  double dt = now_s() - t0;
  printf("{\"requests\":%llu,\"ok\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"per_s\":%.0f}\n",
         (unsigned long long)sum.attempted, (unsigned long long)sum.ok, (unsigned long long)sum.errors, dt,
         dt > 0 ? (double)sum.attempted / dt : 0.0);
  return 0;
}
