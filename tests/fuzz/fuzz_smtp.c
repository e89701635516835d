/* Fuzzes how Spine reads an SMTP server's replies: spine_mail_send (mail.c) runs the SMTP
 * conversation on the HTTP client's curl multi (http_client.c), which keeps the server's last
 * reply line and classifies the outcome by its code. The input is everything the server says on
 * one connection: a small server on the same loop accepts curl's connection, writes the input
 * at once, shuts its side and reads until curl hangs up (so it is the side that closes first and
 * no TIME_WAIT is left on curl's port). Whatever the replies: the callback runs once, a success
 * carries a 2xx or 3xx code, a 4xx is transient and a 5xx not, the last reply line is bounded,
 * and nothing waits for the timeout. The HTTP client is new for each input, so no connection
 * is reused from one input to the next. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "http_client.h"
#include "mail.h"

#include "fuzz.h"

static uv_loop_t loop;
static uv_tcp_t listener;
static char url[64];
static const uint8_t *script; /* the current input */
static size_t script_len;
static int conns; /* server connections open (handles not yet closed) */

static void on_sconn_closed(uv_handle_t *h) {
  free(h);
  conns--;
}

static void drop(uv_tcp_t *c) {
  if (!uv_is_closing((uv_handle_t *)c)) uv_close((uv_handle_t *)c, on_sconn_closed);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b) {
  static char buf[65536];
  (void)h, (void)size;
  *b = uv_buf_init(buf, sizeof buf);
}

/* What curl sends is read and dropped; its end (or an error) closes the connection. */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) drop((uv_tcp_t *)s);
}

static void on_connection(uv_stream_t *l, int status) {
  FUZZ_CHECK(status == 0);
  uv_tcp_t *c = calloc(1, sizeof *c);
  FUZZ_CHECK(c != NULL);
  FUZZ_CHECK(uv_tcp_init(&loop, c) == 0);
  conns++;
  uv_os_fd_t fd;
  if (uv_accept(l, (uv_stream_t *)c) || uv_fileno((uv_handle_t *)c, &fd)) {
    drop(c);
    return;
  }
  /* The whole conversation, and its end, is in curl's socket before curl reads: curl 7.88
   * waits inside the loop for some replies (to QUIT after a refusal, say), and a server on this
   * loop could not answer or hang up then. So no uv_write or uv_shutdown (the loop would run
   * them later): written here at once (an input larger than the socket's buffer is cut), then
   * the write side shut. */
  size_t sent = 0;
  while (sent < script_len) {
    uv_buf_t b = uv_buf_init((char *)script + sent, (unsigned)(script_len - sent));
    int n = uv_try_write((uv_stream_t *)c, &b, 1);
    if (n <= 0) break;
    sent += (size_t)n;
  }
  shutdown(fd, SHUT_WR);
  if (uv_read_start((uv_stream_t *)c, on_alloc, on_read)) drop(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  struct sockaddr_in addr;
  FUZZ_CHECK(uv_loop_init(&loop) == 0);
  FUZZ_CHECK(uv_ip4_addr("127.0.0.1", 0, &addr) == 0);
  FUZZ_CHECK(uv_tcp_init(&loop, &listener) == 0);
  FUZZ_CHECK(uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0) == 0);
  FUZZ_CHECK(uv_listen((uv_stream_t *)&listener, 16, on_connection) == 0);
  int len = sizeof addr;
  FUZZ_CHECK(uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &len) == 0);
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d", ntohs(addr.sin_port));
  return 0;
}

typedef struct outcome {
  int calls, closed;
} outcome;

static void on_sent(void *data, const spine_http_client_response *r) {
  outcome *o = data;
  o->calls++;
  FUZZ_CHECK(r->error != SPINE_ETIMEOUT); /* the server always ends the conversation */
  FUZZ_CHECK(strlen(r->message) < sizeof r->message);
  FUZZ_CHECK(r->headers && r->headers_len <= 200 && r->headers[r->headers_len] == '\0');
  if (r->error == 0) FUZZ_CHECK(r->status >= 200 && r->status < 400);
  if (r->status >= 400 && r->status < 500) FUZZ_CHECK(r->error == SPINE_ETRANSIENT && r->transient);
  if (r->status >= 500 && r->status < 600) FUZZ_CHECK(r->error == SPINE_EIO && !r->transient);
}

static void on_closed(void *data) {
  ((outcome *)data)->closed++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const to[] = {"b@y.test", "c@z.test", NULL};
  static const char *const headers[] = {"X-Idempotency-Key: wf-1:3", NULL};
  script = data;
  script_len = size;
  spine_http_client *cli;
  FUZZ_CHECK(spine_http_client_new(&loop, &cli, NULL) == 0);
  spine_mail m = {0};
  m.url = url;
  m.from = "spine@x.test";
  m.to = to;
  m.subject = "Fuzz";
  m.body = "line 1\n.a line with a dot\nline 3";
  m.message_id = "wf-1-3";
  m.headers = headers;
  m.timeout_ms = 5000;
  outcome o = {0, 0};
  spine_err e;
  spine_err_clear(&e);
  FUZZ_CHECK(spine_mail_send(cli, &m, on_sent, &o, NULL, &e) == 0);
  while (!o.calls)
    uv_run(&loop, UV_RUN_ONCE);
  spine_http_client_close(cli, on_closed, &o);
  while (!o.closed || conns)
    uv_run(&loop, UV_RUN_ONCE);
  FUZZ_CHECK(o.calls == 1);
  return 0;
}
