/* idleconns: opens N loopback TCP connections to its own listener and holds them idle.
 *
 *   idleconns N HOLD_SECONDS
 *
 * Prints {"pid":P} first, then waits for a line on stdin before connecting (so kspan can
 * start first and see every connect/accept), prints {"open":K} once all are up, holds them
 * HOLD_SECONDS, closes them and prints {"closed":K}. The client ends live in a forked child
 * and the server ends in the parent, so each process needs RLIMIT_NOFILE >= N + 16 (it
 * raises its soft limit to the hard one). Bounded in count and time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_net.h"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  int n = atoi(argv[1]);
  int hold = atoi(argv[2]);
  if (n < 1 || n > 50000 || hold < 0 || hold > 120) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  printf("{\"pid\":%d,\"nofile\":%lu}\n", getpid(), (unsigned long)rl.rlim_cur);
  if (wait_for_go() != 0) return 1;

  struct sockaddr_in sa;
  int ls = loopback_listener(4096, &sa);
  if (ls < 0) return 1;
  int* fds = calloc((size_t)n, sizeof(int));
  pid_t child = fork();
  if (child == 0) { /* client ends: connect n times, hold, close */
    close(ls);
    int k = 0;
    for (; k < n; k++) {
      fds[k] = socket(AF_INET, SOCK_STREAM, 0);
      if (fds[k] < 0 || connect(fds[k], (struct sockaddr*)&sa, sizeof(sa)) != 0) break;
    }
    sleep((unsigned)hold + 1);
    for (int i = 0; i < k; i++) close(fds[i]);
    _exit(0);
  }
  int open_n = 0;
  struct pollfd lp = {.fd = ls, .events = POLLIN};
  while (open_n < n && poll(&lp, 1, 5000) > 0) { /* 5 s without a new connection ends it */
    int s = accept(ls, NULL, NULL);
    if (s < 0) break;
    fds[open_n++] = s;
  }
  printf("{\"open\":%d}\n", open_n);
  sleep((unsigned)hold);
  for (int i = 0; i < open_n; i++) close(fds[i]);
  close(ls);
  waitpid(child, NULL, 0);
  printf("{\"closed\":%d}\n", open_n);
  return 0;
}
