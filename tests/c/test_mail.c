/* The SMTP client (mail.c) against a small SMTP server run by the test: the message on the
 * wire (headers, CRLF, curl's dot-stuffing), reply classes, refused connections, refused input,
 * cancel (also in the middle of an upload: nothing is delivered) and a loop that keeps ticking.
 * The server has its own thread and loop: curl 7.88 waits for the reply to the end of data
 * inside curl_multi_socket_action (curl issue 8555), which a server on the client's loop could
 * never answer. */
#include "mail.h"

#include <strings.h>

#include "buf.h"
#include "test.h"

/* ---- the server (its own thread) ---- */

typedef struct smtpd smtpd;

typedef struct sconn {
  uv_tcp_t tcp;
  smtpd *d;
  char in[65536];
  char line[4096];
  size_t len;
  int in_data, held, paused;
  struct sconn *next;
} sconn;

struct smtpd {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t wake;    /* from the test: look at release / resume / stop */
  uv_timer_t unpause; /* resumes reading on its own, should the test never get to say so */
  uv_thread_t thread;
  uv_mutex_t mu; /* guards every field below */
  int port;
  int data_reply, end_reply, hold_greeting;
  size_t pause_after; /* stop reading after this many bytes of DATA until resumed (0: never) */
  int release, resume, stop;
  int connections, messages, eofs, paused;
  int auths; /* AUTH commands seen: a password on the wire */
  size_t data_bytes;
  spine_buf envelope; /* "MAIL FROM:<a>\nRCPT TO:<b>\n..." of the last transaction */
  spine_buf data;     /* the DATA of the current message as received, stuffed (first 1 MiB) */
  spine_buf last;     /* the last complete message */
  sconn *conns;
};

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void reply(sconn *c, const char *text) {
  size_t n = strlen(text);
  uv_write_t *w = malloc(sizeof *w + n);
  ASSERT(w != NULL);
  memcpy(w + 1, text, n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written)) free(w);
}

static void on_conn_closed(uv_handle_t *h) {
  sconn *c = h->data;
  smtpd *d = c->d;
  for (sconn **p = &d->conns; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  free(c);
}

static void drop(sconn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *s, int status) {
  (void)status;
  free(s);
}

static void command(sconn *c, const char *line) {
  smtpd *d = c->d;
  char r[64];
  if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4) ||
      !strncasecmp(line, "RSET", 4) || !strncasecmp(line, "NOOP", 4)) {
    reply(c, "250 test\r\n");
  } else if (!strncasecmp(line, "MAIL FROM:", 10)) {
    uv_mutex_lock(&d->mu);
    spine_buf_reset(&d->envelope);
    spine_buf_printf(&d->envelope, "%s\n", line);
    uv_mutex_unlock(&d->mu);
    reply(c, "250 ok\r\n");
  } else if (!strncasecmp(line, "RCPT TO:", 8)) {
    uv_mutex_lock(&d->mu);
    spine_buf_printf(&d->envelope, "%s\n", line);
    uv_mutex_unlock(&d->mu);
    reply(c, "250 ok\r\n");
  } else if (!strncasecmp(line, "DATA", 4)) {
    uv_mutex_lock(&d->mu);
    int code = d->data_reply;
    spine_buf_reset(&d->data);
    d->data_bytes = 0;
    uv_mutex_unlock(&d->mu);
    c->in_data = code == 354;
    snprintf(r, sizeof r, "%d %s\r\n", code, code == 354 ? "go ahead" : "not now");
    reply(c, r);
  } else if (!strncasecmp(line, "AUTH", 4)) {
    uv_mutex_lock(&d->mu);
    d->auths++;
    uv_mutex_unlock(&d->mu);
    reply(c, "535 not here\r\n");
  } else if (!strncasecmp(line, "QUIT", 4)) {
    reply(c, "221 bye\r\n");
    uv_shutdown_t *s = malloc(sizeof *s);
    ASSERT(s != NULL);
    if (uv_shutdown(s, (uv_stream_t *)&c->tcp, on_shutdown)) free(s);
  } else {
    reply(c, "500 unknown command\r\n");
  }
}

static void resume_all(smtpd *d) {
  for (sconn *c = d->conns; c; c = c->next)
    if (c->paused) {
      c->paused = 0;
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* A cancel that blocked inside curl would keep the test from saying "resume"; resuming anyway
 * lets whatever curl sends then arrive, so that the test sees it. */
static void on_unpause(uv_timer_t *t) {
  smtpd *d = t->data;
  uv_mutex_lock(&d->mu);
  d->resume = 1;
  uv_mutex_unlock(&d->mu);
  resume_all(d);
}

/* One line of DATA, CRLF included (or a part of an over-long line). */
static void data_line(sconn *c, const char *line, size_t len) {
  smtpd *d = c->d;
  uv_mutex_lock(&d->mu);
  if (len == 3 && !memcmp(line, ".\r\n", 3)) {
    c->in_data = 0;
    d->messages++;
    spine_buf_reset(&d->last);
    spine_buf_append(&d->last, d->data.data ? d->data.data : "", d->data.len);
    int code = d->end_reply;
    uv_mutex_unlock(&d->mu);
    char r[64];
    snprintf(r, sizeof r, "%d %s\r\n", code, code == 250 ? "queued" : "refused");
    reply(c, r);
    return;
  }
  d->data_bytes += len;
  if (d->data.len < 1024 * 1024) spine_buf_append(&d->data, line, len);
  if (d->pause_after && d->data_bytes >= d->pause_after && !d->resume && !c->paused) {
    c->paused = d->paused = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&d->unpause, on_unpause, 2000, 0);
  }
  uv_mutex_unlock(&d->mu);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b) {
  (void)size;
  sconn *c = h->data;
  *b = uv_buf_init(c->in, sizeof c->in);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  sconn *c = s->data;
  if (n < 0) {
    uv_mutex_lock(&c->d->mu);
    c->d->eofs++;
    uv_mutex_unlock(&c->d->mu);
    drop(c);
    return;
  }
  for (ssize_t i = 0; i < n && !c->paused; i++) {
    c->line[c->len++] = b->base[i];
    int eol = b->base[i] == '\n';
    if (!eol && c->len < sizeof c->line - 1) continue;
    if (c->in_data) {
      data_line(c, c->line, c->len);
    } else {
      c->line[c->len] = '\0';
      c->line[strcspn(c->line, "\r\n")] = '\0';
      command(c, c->line);
    }
    c->len = 0;
  }
  /* Bytes after a pause are dropped: the tests that pause end the connection. */
}

static void greet(sconn *c) {
  c->held = 0;
  reply(c, "220 test ESMTP\r\n");
}

static void on_connection(uv_stream_t *l, int status) {
  smtpd *d = l->data;
  ASSERT_EQ(status, 0);
  sconn *c = calloc(1, sizeof *c);
  ASSERT(c != NULL);
  c->d = d;
  uv_tcp_init(&d->loop, &c->tcp);
  c->tcp.data = c;
  ASSERT_EQ(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
  c->next = d->conns;
  d->conns = c;
  uv_mutex_lock(&d->mu);
  d->connections++;
  int hold = d->hold_greeting && !d->release;
  uv_mutex_unlock(&d->mu);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (hold)
    c->held = 1;
  else
    greet(c);
}

static void on_wake(uv_async_t *a) {
  smtpd *d = a->data;
  uv_mutex_lock(&d->mu);
  int release = d->release, resume = d->resume, stop = d->stop;
  uv_mutex_unlock(&d->mu);
  for (sconn *c = d->conns; c; c = c->next)
    if (release && c->held) greet(c);
  if (resume) resume_all(d);
  if (!stop) return;
  for (sconn *c = d->conns; c; c = c->next)
    drop(c);
  uv_close((uv_handle_t *)&d->listener, NULL);
  uv_close((uv_handle_t *)&d->wake, NULL);
  uv_close((uv_handle_t *)&d->unpause, NULL);
}

static void serve(void *arg) {
  smtpd *d = arg;
  uv_run(&d->loop, UV_RUN_DEFAULT);
}

static void smtpd_start(smtpd *d, int data_reply, int end_reply) {
  memset(d, 0, sizeof *d);
  d->data_reply = data_reply;
  d->end_reply = end_reply;
  ASSERT_EQ(uv_mutex_init(&d->mu), 0);
  ASSERT_EQ(uv_loop_init(&d->loop), 0);
  uv_tcp_init(&d->loop, &d->listener);
  d->listener.data = d;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  ASSERT_EQ(uv_tcp_bind(&d->listener, (const struct sockaddr *)&a, 0), 0);
  ASSERT_EQ(uv_listen((uv_stream_t *)&d->listener, 16, on_connection), 0);
  struct sockaddr_in got;
  int len = sizeof got;
  ASSERT_EQ(uv_tcp_getsockname(&d->listener, (struct sockaddr *)&got, &len), 0);
  d->port = ntohs(got.sin_port);
  uv_async_init(&d->loop, &d->wake, on_wake);
  d->wake.data = d;
  uv_timer_init(&d->loop, &d->unpause);
  d->unpause.data = d;
}

static void smtpd_run(smtpd *d) {
  ASSERT_EQ(uv_thread_create(&d->thread, serve, d), 0);
}

/* Sets one of release / resume / stop and wakes the server. */
static void smtpd_tell(smtpd *d, int *flag) {
  uv_mutex_lock(&d->mu);
  *flag = 1;
  uv_mutex_unlock(&d->mu);
  uv_async_send(&d->wake);
}

static int smtpd_get(smtpd *d, const int *field) {
  uv_mutex_lock(&d->mu);
  int v = *field;
  uv_mutex_unlock(&d->mu);
  return v;
}

static void smtpd_stop(smtpd *d) {
  smtpd_tell(d, &d->stop);
  ASSERT_EQ(uv_thread_join(&d->thread), 0);
  ASSERT_EQ(uv_loop_close(&d->loop), 0);
  uv_mutex_destroy(&d->mu);
  spine_buf_free(&d->envelope);
  spine_buf_free(&d->data);
  spine_buf_free(&d->last);
}

/* ---- the client side ---- */

typedef struct fixture {
  uv_loop_t loop;
  spine_http_client *cli;
  uv_timer_t ticker;
  uint64_t ticks;
  int closed;
  char url[64];
} fixture;

static void on_tick(uv_timer_t *t) {
  ((fixture *)t->data)->ticks++;
}

static void setup(fixture *f, int port) {
  memset(f, 0, sizeof *f);
  ASSERT_EQ(uv_loop_init(&f->loop), 0);
  spine_err e;
  ASSERT_EQ(spine_http_client_new(&f->loop, &f->cli, &e), 0);
  snprintf(f->url, sizeof f->url, "smtp://127.0.0.1:%d", port);
  uv_timer_init(&f->loop, &f->ticker);
  f->ticker.data = f;
  uv_timer_start(&f->ticker, on_tick, 1, 1);
}

static void on_closed(void *data) {
  ((fixture *)data)->closed++;
}

static void teardown(fixture *f) {
  uv_close((uv_handle_t *)&f->ticker, NULL);
  spine_http_client_close(f->cli, on_closed, f);
  ASSERT_EQ(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  ASSERT_EQ(f->closed, 1);
  ASSERT_EQ(uv_loop_close(&f->loop), 0);
}

/* Runs the client's loop until `field` of the server is at least `want` (a deadline, not a
 * timing assertion: the ticker wakes the loop every millisecond). */
static void wait_server(fixture *f, smtpd *d, const int *field, int want) {
  uint64_t deadline = uv_now(&f->loop) + 30000;
  while (smtpd_get(d, field) < want) {
    ASSERT_LT(uv_now(&f->loop), deadline);
    uv_run(&f->loop, UV_RUN_ONCE);
  }
}

typedef struct got {
  int calls, error, transient, status;
  uint64_t tick;
  char message[256];
} got;

static void on_sent(void *data, const spine_http_client_response *r) {
  got *g = data;
  g->calls++;
  g->error = r->error;
  g->transient = r->transient;
  g->status = r->status;
  snprintf(g->message, sizeof g->message, "%s", r->message);
}

static void wait_sent(fixture *f, got *g) {
  while (!g->calls)
    uv_run(&f->loop, UV_RUN_ONCE);
}

static const char *const rcpts[] = {"b@y.test", "c@z.test", NULL};

static spine_mail message(const fixture *f) {
  spine_mail m = {0};
  m.url = f->url;
  m.from = "a@x.test";
  m.to = rcpts;
  m.subject = "Hello";
  m.body = "hi";
  m.timeout_ms = 20000;
  return m;
}

TEST_IMPL(mail_sends_message) {
  smtpd d;
  smtpd_start(&d, 354, 250);
  smtpd_run(&d);
  fixture f;
  setup(&f, d.port);
  static const char *const headers[] = {"X-Idempotency-Key: k-1", "Reply-To: r@x.test", NULL};
  spine_mail m = message(&f);
  m.subject = "Your switch, confirmed";
  m.message_id = "m-1";
  m.headers = headers;
  m.body = "first\n.dot\n..\n.\r\nlast"; /* LF, CRLF and no line end at the end */
  got g = {0};
  spine_http_client_call *call = NULL;
  ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g, &call, NULL), 0);
  ASSERT(call != NULL);
  ASSERT_EQ(spine_http_client_running(f.cli), 1);
  wait_sent(&f, &g);
  ASSERT_EQ(g.error, 0);
  ASSERT_EQ(g.status, 250);
  ASSERT_EQ(g.transient, 0);
  ASSERT_EQ(spine_http_client_running(f.cli), 0);

  uv_mutex_lock(&d.mu);
  ASSERT_EQ(d.messages, 1);
  ASSERT_STR_EQ(spine_buf_str(&d.envelope), "MAIL FROM:<a@x.test>\nRCPT TO:<b@y.test>\n"
                                            "RCPT TO:<c@z.test>\n");
  const char *msg = spine_buf_str(&d.last);
  const char *head = "From: a@x.test\r\nTo: b@y.test, c@z.test\r\n"
                     "Subject: Your switch, confirmed\r\nDate: ";
  ASSERT(!strncmp(msg, head, strlen(head)));
  ASSERT_STR_CONTAINS(msg, " +0000\r\nMessage-ID: <m-1@spine>\r\n");
  ASSERT_STR_CONTAINS(msg, "\r\nContent-Type: text/plain; charset=UTF-8\r\n");
  ASSERT_STR_CONTAINS(msg, "\r\nX-Idempotency-Key: k-1\r\nReply-To: r@x.test\r\n\r\n");
  /* curl stuffed each line that starts with a dot; every line ends in CRLF */
  size_t len = strlen(msg);
  const char *body = "\r\n\r\nfirst\r\n..dot\r\n...\r\n..\r\nlast\r\n";
  ASSERT(len > strlen(body));
  ASSERT_STR_EQ(msg + len - strlen(body), body);
  for (size_t i = 0; i < len; i++)
    if (msg[i] == '\n') ASSERT_EQ(msg[i - 1], '\r');
  uv_mutex_unlock(&d.mu);

  /* A second message reuses nothing it should not: a new transaction, one more message. */
  got g2 = {0};
  m.headers = NULL;
  m.message_id = NULL;
  m.body = "";
  ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g2, NULL, NULL), 0);
  wait_sent(&f, &g2);
  ASSERT_EQ(g2.error, 0);
  ASSERT_EQ(smtpd_get(&d, &d.messages), 2);
  uv_mutex_lock(&d.mu);
  ASSERT(strstr(spine_buf_str(&d.last), "Message-ID") == NULL);
  len = d.last.len;
  ASSERT(len > 4 && !strcmp(d.last.data + len - 4, "\r\n\r\n")); /* headers, then no body */
  uv_mutex_unlock(&d.mu);
  teardown(&f);
  smtpd_stop(&d);
  return 0;
}

TEST_IMPL(mail_reply_classes) {
  smtpd d;
  smtpd_start(&d, 354, 451);
  smtpd_run(&d);
  fixture f;
  setup(&f, d.port);
  spine_mail m = message(&f);
  static const struct {
    int data_reply, end_reply, error, transient, status;
  } cases[] = {
      {354, 451, SPINE_ETRANSIENT, 1, 451}, /* end of data: try later */
      {354, 550, SPINE_EIO, 0, 550},        /* end of data: refused for good */
      {451, 250, SPINE_ETRANSIENT, 1, 451}, /* DATA itself: try later */
      {554, 250, SPINE_EIO, 0, 554},        /* DATA itself: refused */
      {354, 250, 0, 0, 250},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uv_mutex_lock(&d.mu);
    d.data_reply = cases[i].data_reply;
    d.end_reply = cases[i].end_reply;
    uv_mutex_unlock(&d.mu);
    got g = {0};
    ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g, NULL, NULL), 0);
    wait_sent(&f, &g);
    ASSERT_EQ(g.error, cases[i].error);
    ASSERT_EQ(g.transient, cases[i].transient);
    ASSERT_EQ(g.status, cases[i].status);
    if (g.error) {
      char code[8];
      snprintf(code, sizeof code, "%d", cases[i].status);
      ASSERT_STR_CONTAINS(g.message, code);
    }
  }
  teardown(&f);
  int port = d.port;
  smtpd_stop(&d);

  /* Nothing listens there now: refused, worth trying again. */
  setup(&f, port);
  m = message(&f);
  got g = {0};
  ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g, NULL, NULL), 0);
  wait_sent(&f, &g);
  ASSERT_EQ(g.error, SPINE_ETRANSIENT);
  ASSERT_EQ(g.transient, 1);
  ASSERT_EQ(g.status, 0);
  teardown(&f);
  return 0;
}

static void never_called(void *data, const spine_http_client_response *r) {
  (void)data, (void)r;
  ASSERT(!"the callback of a refused or cancelled mail ran");
}

TEST_IMPL(mail_refuses_bad_input) {
  fixture f;
  setup(&f, 25);
  static const char *const none[] = {NULL};
  static const char *const crlf_to[] = {"b@y.test", "c@z.test\r\nRCPT TO:<evil@x>", NULL};
  static const char *const named_to[] = {"Bob <b@y.test>", NULL};
  static const char *const list_to[] = {"b@y.test, c@z.test", NULL};
  static const char *const crlf_header[] = {"X-A: 1\r\nBcc: evil@x", NULL};
  static const char *const no_colon[] = {"X-A 1", NULL};
  static const char *const own[] = {"From: boss@x.test", NULL};
  static const struct {
    const char *field;
    const char *url, *from, *subject, *message_id, *username, *password;
    const char *const *to, *const *headers;
  } cases[] = {
      {"url", "http://127.0.0.1:25", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
      {"url", "smtp://", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
      {"url", "smtp://user:secret@127.0.0.1:25", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
      {"from", NULL, "a@x.test\r\nRCPT TO:<evil@x>", NULL, NULL, NULL, NULL, NULL, NULL},
      {"from", NULL, "nobody", NULL, NULL, NULL, NULL, NULL, NULL},
      {"to", NULL, NULL, NULL, NULL, NULL, NULL, none, NULL},
      {"to[1]", NULL, NULL, NULL, NULL, NULL, NULL, crlf_to, NULL},
      {"to[0]", NULL, NULL, NULL, NULL, NULL, NULL, named_to, NULL},
      {"to[0]", NULL, NULL, NULL, NULL, NULL, NULL, list_to, NULL},
      {"subject", NULL, NULL, "Hi\r\nBcc: evil@x", NULL, NULL, NULL, NULL, NULL},
      {"message_id", NULL, NULL, NULL, "a>\r\nBcc: evil@x", NULL, NULL, NULL, NULL},
      {"headers[0]", NULL, NULL, NULL, NULL, NULL, NULL, NULL, crlf_header},
      {"headers[0]", NULL, NULL, NULL, NULL, NULL, NULL, NULL, no_colon},
      {"headers[0]", NULL, NULL, NULL, NULL, NULL, NULL, NULL, own},
      {"password", NULL, NULL, NULL, NULL, "user", NULL, NULL, NULL},
      {"username", NULL, NULL, NULL, NULL, NULL, "secret", NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    spine_mail m = message(&f);
    if (cases[i].url) m.url = cases[i].url;
    if (cases[i].from) m.from = cases[i].from;
    if (cases[i].subject) m.subject = cases[i].subject;
    if (cases[i].message_id) m.message_id = cases[i].message_id;
    if (cases[i].to) m.to = cases[i].to;
    if (cases[i].headers) m.headers = cases[i].headers;
    m.username = cases[i].username;
    m.password = cases[i].password;
    spine_err e;
    spine_err_clear(&e);
    spine_http_client_call *call = (spine_http_client_call *)&e; /* must be reset to NULL */
    ASSERT_EQ(spine_mail_send(f.cli, &m, never_called, NULL, &call, &e), SPINE_EINVAL);
    ASSERT(call == NULL);
    ASSERT_STR_EQ(e.field, cases[i].field);
    ASSERT(strstr(e.msg, "secret") == NULL);
  }
  spine_mail m = message(&f);
  m.to = NULL;
  ASSERT_EQ(spine_mail_send(f.cli, &m, never_called, NULL, NULL, NULL), SPINE_EINVAL);
  ASSERT_EQ(spine_http_client_running(f.cli), 0);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  teardown(&f);
  return 0;
}

/* Credentials over smtp:// to a server that offers no STARTTLS: nothing is sent, the password
 * least of all. */
TEST_IMPL(mail_credentials_need_starttls) {
  smtpd d;
  smtpd_start(&d, 354, 250);
  smtpd_run(&d);
  fixture f;
  setup(&f, d.port);
  spine_mail m = message(&f);
  m.username = "acme";
  m.password = "s3cret-on-the-wire";
  got g = {0};
  ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g, NULL, NULL), 0);
  wait_sent(&f, &g);
  ASSERT_NE(g.error, 0);
  ASSERT(strstr(g.message, "s3cret") == NULL);
  ASSERT_EQ(smtpd_get(&d, &d.auths), 0);
  ASSERT_EQ(smtpd_get(&d, &d.messages), 0);
  /* the same message without credentials goes: the refusal was the missing STARTTLS */
  m.username = m.password = NULL;
  got g2 = {0};
  ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g2, NULL, NULL), 0);
  wait_sent(&f, &g2);
  ASSERT_EQ(g2.error, 0);
  ASSERT_EQ(smtpd_get(&d, &d.messages), 1);
  teardown(&f);
  smtpd_stop(&d);
  return 0;
}

TEST_IMPL(mail_cancel) {
  smtpd d;
  smtpd_start(&d, 354, 250);
  d.hold_greeting = 1;
  smtpd_run(&d);
  fixture f;
  setup(&f, d.port);
  spine_mail m = message(&f);
  spine_http_client_call *call;
  ASSERT_EQ(spine_mail_send(f.cli, &m, never_called, NULL, &call, NULL), 0);
  wait_server(&f, &d, &d.connections, 1);
  spine_http_client_cancel(call); /* waiting for the greeting */
  ASSERT_EQ(spine_http_client_running(f.cli), 0);
  wait_server(&f, &d, &d.eofs, 1); /* the connection is gone */

  /* In the middle of the upload: the server stops reading after 64 KiB of a 32 MiB body, more
   * than the sockets' buffers hold, so the upload cannot have ended when it is cancelled. */
  size_t size = 32u << 20;
  char *body = malloc(size + 1);
  ASSERT(body != NULL);
  for (size_t i = 0; i < size; i++)
    body[i] = i % 64 == 63 ? '\n' : 'x';
  body[size] = '\0';
  uv_mutex_lock(&d.mu);
  d.pause_after = 64 * 1024;
  uv_mutex_unlock(&d.mu);
  smtpd_tell(&d, &d.release);
  m.body = body;
  ASSERT_EQ(spine_mail_send(f.cli, &m, never_called, NULL, &call, NULL), 0);
  free(body); /* the message was copied */
  wait_server(&f, &d, &d.paused, 1);
  spine_http_client_cancel(call);
  smtpd_tell(&d, &d.resume);
  wait_server(&f, &d, &d.eofs, 2);
  ASSERT_EQ(smtpd_get(&d, &d.messages), 0); /* no end-of-data mark: nothing delivered */

  /* A mail still running when the client closes gets SPINE_ECANCELLED. */
  uv_mutex_lock(&d.mu);
  d.hold_greeting = 1;
  d.release = 0;
  uv_mutex_unlock(&d.mu);
  m.body = "hi";
  got g = {0};
  ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g, NULL, NULL), 0);
  wait_server(&f, &d, &d.connections, 3);
  teardown(&f);
  ASSERT_EQ(g.calls, 1);
  ASSERT_EQ(g.error, SPINE_ECANCELLED);
  smtpd_stop(&d);
  return 0;
}

#define TICKS_HELD 20

TEST_IMPL(mail_loop_ticks_while_sending) {
  smtpd d;
  smtpd_start(&d, 354, 250);
  d.hold_greeting = 1;
  smtpd_run(&d);
  fixture f;
  setup(&f, d.port);
  spine_mail m = message(&f);
  got g = {0};
  ASSERT_EQ(spine_mail_send(f.cli, &m, on_sent, &g, NULL, NULL), 0);
  wait_server(&f, &d, &d.connections, 1);
  /* The server greets only after the client's loop ticked TICKS_HELD more times: a client that
   * blocked the loop while waiting would never let it. */
  uint64_t at_connect = f.ticks;
  while (f.ticks - at_connect < TICKS_HELD) {
    ASSERT_EQ(g.calls, 0);
    uv_run(&f.loop, UV_RUN_ONCE);
  }
  smtpd_tell(&d, &d.release);
  wait_sent(&f, &g);
  ASSERT_EQ(g.error, 0);
  ASSERT_EQ(g.status, 250);
  ASSERT_EQ(smtpd_get(&d, &d.messages), 1);
  teardown(&f);
  smtpd_stop(&d);
  return 0;
}
