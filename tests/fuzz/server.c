/* Raw bytes to the HTTP server over a socketpair (server.h). The client end stays out of the
 * loop: the harness writes and reads it non-blocking between turns of the loop, and the
 * exchange is over when the client has read to the end and no connection handle is left. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

void fuzz_server_start(fuzz_server *fs, const spine_http_server_opts *o) {
  FUZZ_CHECK(uv_loop_init(&fs->loop) == 0);
  spine_err e;
  spine_err_clear(&e);
  FUZZ_CHECK(spine_http_server_start(&fs->loop, o, &fs->srv, &e) == 0);
}

static void count_tcp(uv_handle_t *h, void *arg) {
  if (h->type == UV_TCP) (*(int *)arg)++;
}

/* TCP handles on the loop, closing ones included: the listener, and a connection until its
 * close callback has freed it. */
static int tcp_handles(uv_loop_t *loop) {
  int n = 0;
  uv_walk(loop, count_tcp, &n);
  return n;
}

void fuzz_server_exchange(fuzz_server *fs, const void *data, size_t len, spine_buf *response) {
  int sv[2];
  spine_buf_reset(response);
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  int client = sv[1];
  FUZZ_CHECK(fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK) == 0);
  int listeners = tcp_handles(&fs->loop);
  FUZZ_CHECK(spine_http_server_serve_fd(fs->srv, sv[0]) == 0);
  const char *p = data;
  size_t sent = 0;
  int shut = 0, eof = 0;
  for (;;) {
    while (sent < len) {
      ssize_t n = write(client, p + sent, len - sent);
      if (n > 0) {
        sent += (size_t)n;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (errno != EAGAIN && errno != EWOULDBLOCK) sent = len; /* the server hung up */
        break;
      }
    }
    if (sent == len && !shut) {
      shutdown(client, SHUT_WR); /* the end of the request: the server reads EOF */
      shut = 1;
    }
    while (!eof) {
      char buf[16384];
      ssize_t n = read(client, buf, sizeof buf);
      if (n > 0) {
        FUZZ_CHECK(spine_buf_append(response, buf, (size_t)n) == 0);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
      }
    }
    if (eof && tcp_handles(&fs->loop) == listeners) break;
    uv_run(&fs->loop, UV_RUN_ONCE); /* a hang here is a finding: libFuzzer's -timeout */
  }
  close(client);
}

int fuzz_server_status(const spine_buf *response) {
  const char *r = spine_buf_str(response);
  if (response->len < 12 || strncmp(r, "HTTP/1.", 7) || r[8] != ' ') return 0;
  return atoi(r + 9);
}
