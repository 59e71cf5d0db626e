/* A minimal HTTPS client with OpenSSL linked in statically; the build strips it, so it
 * is a TLS-capable binary without SSL_read/SSL_write symbols: what kspan cannot see into
 * and must report (tests/integration/tls_test.cc).
 *
 *   tls_get PORT PATH [COUNT]   GET https://127.0.0.1:PORT/PATH COUNT times (default 1),
 *                               one connection each; prints each status line. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int get_once(SSL_CTX* ctx, int port, const char* path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof(addr)) != 0) {
    perror("connect");
    return 1;
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  char req[512];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                   path, port);
  if (SSL_write(ssl, req, n) != n) return 1;
  char buf[4096];
  int got, first = 1;
  while ((got = SSL_read(ssl, buf, sizeof(buf) - 1)) > 0) {
    if (first) {
      buf[got] = '\0';
      char* eol = strstr(buf, "\r\n");
      if (eol) *eol = '\0';
      printf("%s\n", buf);
      first = 0;
    }
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  return first;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PORT PATH [COUNT]\n", argv[0]);
    return 2;
  }
  const int port = atoi(argv[1]);
  const int count = argc > 3 ? atoi(argv[3]) : 1;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the test's self-signed certificate */
  int rc = 0;
  for (int i = 0; i < count && i < 1000; i++) rc |= get_once(ctx, port, argv[2]);
  SSL_CTX_free(ctx);
  return rc;
}
