/* Shared by the bench helpers: the start handshake with bench.py and a loopback listener. */
#ifndef KSPAN_BENCH_NET_H
#define KSPAN_BENCH_NET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

/* bench.py starts kspan with --pid once it has read our pid, then writes a line: block
 * until that line comes (at most 30 s). Returns 0 on go. */
static inline int wait_for_go(void) {
  struct pollfd p = {.fd = 0, .events = POLLIN};
  if (poll(&p, 1, 30000) <= 0) return -1;
  char line[64];
  return fgets(line, sizeof(line), stdin) ? 0 : -1;
}

/* A listening TCP socket on 127.0.0.1 with a kernel-chosen port, written to *sa.
 * Returns the fd, or -1. */
static inline int loopback_listener(int backlog, struct sockaddr_in* sa) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t sl = sizeof(a);
  if (ls < 0 || bind(ls, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(ls, backlog) != 0) return -1;
  getsockname(ls, (struct sockaddr*)&a, &sl);
  *sa = a;
  return ls;
}

#endif
