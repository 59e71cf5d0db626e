/* loadgen: a fixed-rate (open-loop) HTTP/1.1 client for latency percentiles.
 *
 * Requests are scheduled at start + i / rate, independent of how fast answers come back.
 * Each keep-alive connection carries one request at a time; a scheduled request that finds
 * no idle connection waits in a queue, and its latency is measured from its *scheduled*
 * time (so a stall is charged to every request it delayed: no coordinated omission).
 *
 *   loadgen HOST PORT PATH RATE SECONDS CONNS
 *
 * Prints one JSON object on stdout. Exits after SECONDS + 5 s at the latest; never asserts.
 * Responses must carry Content-Length (nginx and the bench python app both do).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define BUF_SIZE 16384

struct conn {
  int fd;
  int busy;
  uint64_t sched_ns; /* scheduled start of the request in flight */
  size_t have;
  char buf[BUF_SIZE];
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static int open_conn(const char* host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &sa.sin_addr);
  if (connect(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

/* Length of a complete response at the start of buf, 0 when more bytes are needed,
 * -1 when it cannot be parsed. */
static long response_len(const char* buf, size_t n) {
  const char* end = memmem(buf, n, "\r\n\r\n", 4);
  if (!end) return n >= BUF_SIZE ? -1 : 0;
  size_t head = (size_t)(end - buf) + 4;
  long body = -1;
  for (const char* p = buf; p < end;) {
    const char* eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
    if (!eol) break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) body = atol(p + 15);
    p = eol + 2;
  }
  if (body < 0) return -1;
  return n >= head + (size_t)body ? (long)(head + (size_t)body) : 0;
}

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: loadgen HOST PORT PATH RATE SECONDS CONNS\n");
    return 2;
  }
  const char* host = argv[1];
  int port = atoi(argv[2]);
  const char* path = argv[3];
  double rate = atof(argv[4]);
  double seconds = atof(argv[5]);
  int nconns = atoi(argv[6]);
  if (nconns < 1 || nconns > MAX_CONNS || rate <= 0 || seconds <= 0) return 2;

  char req[512];
  int req_len =
      snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: kspan-bench\r\n\r\n", path,
               host, port);
  uint64_t total = (uint64_t)(rate * seconds);
  uint64_t interval = (uint64_t)(1e9 / rate);
  uint64_t* lat = calloc(total + 1, sizeof(uint64_t));
  uint64_t* queue = calloc(total + 1, sizeof(uint64_t)); /* scheduled times waiting for a conn */
  static struct conn conns[MAX_CONNS];
  int ep = epoll_create1(0);
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = open_conn(host, port);
    if (conns[i].fd < 0) {
      printf("{\"error\":\"connect failed\"}\n");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }

  uint64_t start = now_ns() + 1000000; /* 1 ms to settle */
  uint64_t deadline = start + (uint64_t)(seconds * 1e9) + 5000000000ull;
  uint64_t scheduled = 0, q_head = 0, q_tail = 0, done = 0, errors = 0;
  int busy = 0;
  while (done + errors < total) {
    uint64_t now = now_ns();
    if (now > deadline) break;
    while (scheduled < total && start + scheduled * interval <= now)
      queue[q_tail++] = start + interval * scheduled++;
    for (int i = 0; i < nconns && q_head < q_tail; i++) {
      struct conn* c = &conns[i];
      if (c->busy || c->fd < 0) continue;
      if (write(c->fd, req, (size_t)req_len) != req_len) {
        errors++;
        q_head++;
        continue;
      }
      c->busy = 1;
      c->sched_ns = queue[q_head++];
      busy++;
    }
    uint64_t next = scheduled < total ? start + scheduled * interval : now + 50000000ull;
    struct timespec to = {0, 0};
    if (next > now) to.tv_nsec = (long)(next - now > 50000000ull ? 50000000ull : next - now);
    struct epoll_event evs[64];
    int n = epoll_pwait2(ep, evs, 64, &to, NULL);
    if (n < 0 && errno == ENOSYS) n = epoll_wait(ep, evs, 64, 1);
    for (int k = 0; k < n; k++) {
      struct conn* c = &conns[evs[k].data.u32];
      ssize_t r = read(c->fd, c->buf + c->have, BUF_SIZE - c->have);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        if (c->busy) errors++, busy--;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->busy = 0;
        continue;
      }
      c->have += (size_t)r;
      long len = response_len(c->buf, c->have);
      if (len < 0) {
        errors++;
        c->have = 0;
        continue;
      }
      if (len == 0) continue;
      memmove(c->buf, c->buf + len, c->have - (size_t)len);
      c->have -= (size_t)len;
      if (c->busy) {
        lat[done++] = now_ns() - c->sched_ns;
        c->busy = 0;
        busy--;
      }
    }
  }
  uint64_t elapsed = now_ns() - start;
  /* Percentiles over the requests after the first 10 % (warm-up). */
  uint64_t skip = done / 10;
  uint64_t m = done - skip;
  qsort(lat + skip, m, sizeof(uint64_t), cmp_u64);
#define PCT(p) (m ? lat[skip + (uint64_t)((double)(m - 1) * (p))] / 1000.0 : 0.0)
  printf(
      "{\"scheduled\":%lu,\"completed\":%lu,\"errors\":%lu,\"rate_target\":%.0f,\"rate_achieved\":%.1f,"
      "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
      (unsigned long)total, (unsigned long)done, (unsigned long)errors, rate, done / (elapsed / 1e9),
      PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0));
  for (int i = 0; i < nconns; i++)
    if (conns[i].fd >= 0) close(conns[i].fd);
  return 0;
}
