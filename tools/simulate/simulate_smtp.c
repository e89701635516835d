/* The simulator's SMTP sink (simulate_smtp.h): the commands a mail client sends (RFC 5321's
 * minimum: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), line by line on libuv streams.
 * A message is parsed just enough for tests: its unfolded headers Subject, Message-ID and
 * X-Idempotency-Key, and its body with dot-stuffing undone. */
#include "simulate_smtp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "log.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define MAX_LINE                      4096       /* longer command or data lines end the session */
#define MAX_MESSAGE                   (1u << 20) /* 552 above this */
#define MAX_RCPT                      100
#define MAX_MESSAGES                  100000

typedef struct email {
  char *from, *subject, *message_id, *key, *body;
  char **to;
  int nto;
} email;

typedef struct session session;

struct spine_sim_smtp {
  uv_tcp_t listener;
  uv_loop_t *loop;
  double reject_rate;
  uint64_t rng;
  email *mails;
  int n, cap, rejected;
  int down, deferred; /* POST /_sim/smtp: messages are deferred (451) while down */
  session *sessions;
  int closing, open_handles;
};

typedef enum { CMD, DATA } mode;

struct session {
  uv_tcp_t tcp;
  spine_sim_smtp *s;
  spine_buf in;   /* bytes read, not yet a whole line */
  spine_buf data; /* the message during DATA */
  mode mode;
  int too_big, quitting;
  email cur; /* envelope so far */
  session *prev, *next;
};

typedef struct {
  uv_write_t req;
  char text[];
} reply;

static double draw(spine_sim_smtp *s) {
  s->rng ^= s->rng >> 12;
  s->rng ^= s->rng << 25;
  s->rng ^= s->rng >> 27;
  return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static char *dup_n(const char *p, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, p, n);
    d[n] = '\0';
  }
  return d;
}

static void email_free(email *m) {
  free(m->from);
  free(m->subject);
  free(m->message_id);
  free(m->key);
  free(m->body);
  for (int i = 0; i < m->nto; i++)
    free(m->to[i]);
  free(m->to);
  memset(m, 0, sizeof *m);
}

/* ---- the session's life ---- */

static void on_session_closed(uv_handle_t *h) {
  session *c = container_of((uv_tcp_t *)h, session, tcp);
  spine_sim_smtp *s = c->s;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->sessions = c->next;
  if (c->next) c->next->prev = c->prev;
  spine_buf_free(&c->in);
  spine_buf_free(&c->data);
  email_free(&c->cur);
  free(c);
  if (--s->open_handles == 0 && s->closing) free(s);
}

static void end_session(session *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_session_closed);
}

static void on_written(uv_write_t *w, int status) {
  session *c = w->data;
  free(container_of(w, reply, req));
  if (status < 0 || c->quitting) end_session(c);
}

static void say(session *c, const char *text) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  size_t n = strlen(text);
  reply *r = malloc(sizeof *r + n);
  if (!r) {
    end_session(c);
    return;
  }
  memcpy(r->text, text, n);
  r->req.data = c;
  uv_buf_t buf = uv_buf_init(r->text, (unsigned)n);
  if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written)) {
    free(r);
    end_session(c);
  }
}

/* ---- a message ---- */

/* The value of header `name` in the unfolded header block [h, end), or NULL. */
static char *header(const char *h, const char *end, const char *name) {
  size_t nl = strlen(name);
  for (const char *p = h; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
      spine_buf v = SPINE_BUF_INIT;
      const char *q = p + nl + 1;
      for (;;) { /* the value and its continuation lines, unfolded */
        while (q < eol && (*q == ' ' || *q == '\t'))
          q++;
        const char *e = eol;
        while (e > q && (e[-1] == '\r' || e[-1] == ' '))
          e--;
        if (v.len) spine_buf_putc(&v, ' ');
        spine_buf_append(&v, q, (size_t)(e - q));
        if (eol + 1 >= end || (eol[1] != ' ' && eol[1] != '\t')) break;
        q = eol + 1;
        eol = memchr(q, '\n', (size_t)(end - q));
        if (!eol) eol = end;
      }
      char *out = dup_n(spine_buf_str(&v), v.len);
      spine_buf_free(&v);
      return out;
    }
    p = eol + 1;
  }
  return NULL;
}

/* The end of DATA: keeps the message (or refuses it) and resets the envelope. */
static void take_message(session *c) {
  spine_sim_smtp *s = c->s;
  if (c->too_big) {
    say(c, "552 message too big\r\n");
  } else if (s->down) {
    s->deferred++;
    say(c, "451 the mailbox is unavailable (simulated outage)\r\n");
  } else if (s->reject_rate > 0 && draw(s) < s->reject_rate) {
    s->rejected++;
    say(c, "554 the mailbox refused the message (simulated)\r\n");
  } else if (s->n == MAX_MESSAGES) {
    say(c, "452 the simulator is full\r\n");
  } else {
    if (s->n == s->cap) {
      int cap = s->cap ? 2 * s->cap : 64;
      email *m = realloc(s->mails, (size_t)cap * sizeof *m);
      if (!m) {
        say(c, "451 out of memory\r\n");
        goto reset;
      }
      s->mails = m;
      s->cap = cap;
    }
    const char *msg = spine_buf_str(&c->data);
    const char *split = strstr(msg, "\r\n\r\n");
    size_t hlen = split ? (size_t)(split - msg) + 2 : c->data.len;
    email *m = &s->mails[s->n++];
    *m = c->cur;
    memset(&c->cur, 0, sizeof c->cur);
    m->subject = header(msg, msg + hlen, "Subject");
    m->message_id = header(msg, msg + hlen, "Message-ID");
    m->key = header(msg, msg + hlen, "X-Idempotency-Key");
    m->body = split ? dup_n(split + 4, c->data.len - hlen - 2) : dup_n("", 0);
    spine_log_info("simulate", "mail received", "subject", m->subject ? m->subject : "", NULL);
    say(c, "250 queued\r\n");
  }
reset:
  email_free(&c->cur);
  spine_buf_reset(&c->data);
  c->too_big = 0;
  c->mode = CMD;
}

static void data_line(session *c, const char *line, size_t n) {
  if (n == 1 && line[0] == '.') return take_message(c);
  if (n && line[0] == '.') line++, n--; /* dot-stuffing */
  if (c->data.len + n + 2 > MAX_MESSAGE) c->too_big = 1;
  if (c->too_big) return;
  if (spine_buf_append(&c->data, line, n) || spine_buf_append(&c->data, "\r\n", 2)) c->too_big = 1;
}

/* The address inside "<...>" after "FROM:" or "TO:", or NULL. */
static char *address(const char *arg) {
  const char *lt = strchr(arg, '<'), *gt = lt ? strchr(lt, '>') : NULL;
  return gt ? dup_n(lt + 1, (size_t)(gt - lt - 1)) : NULL;
}

static int is(const char *line, const char *verb) {
  size_t n = strlen(verb);
  return !strncasecmp(line, verb, n) && (line[n] == '\0' || line[n] == ' ' || line[n] == ':');
}

static void command(session *c, char *line) {
  if (is(line, "EHLO")) {
    say(c, "250-127.0.0.1 spine simulate\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n");
  } else if (is(line, "HELO")) {
    say(c, "250 127.0.0.1 spine simulate\r\n");
  } else if (!strncasecmp(line, "MAIL FROM:", 10)) {
    email_free(&c->cur);
    c->cur.from = address(line + 10);
    say(c, c->cur.from ? "250 sender ok\r\n" : "501 MAIL FROM:<address> expected\r\n");
  } else if (!strncasecmp(line, "RCPT TO:", 8)) {
    char *to = address(line + 8);
    char **list = NULL;
    if (!c->cur.from) {
      say(c, "503 MAIL first\r\n");
    } else if (!to) {
      say(c, "501 RCPT TO:<address> expected\r\n");
    } else if (c->cur.nto == MAX_RCPT) {
      say(c, "452 too many recipients\r\n");
    } else if (!(list = realloc(c->cur.to, (size_t)(c->cur.nto + 1) * sizeof *list))) {
      say(c, "451 out of memory\r\n");
    } else {
      c->cur.to = list;
      c->cur.to[c->cur.nto++] = to;
      to = NULL;
      say(c, "250 recipient ok\r\n");
    }
    free(to);
  } else if (is(line, "DATA")) {
    if (!c->cur.nto) return say(c, "503 RCPT first\r\n");
    c->mode = DATA;
    say(c, "354 end with <CRLF>.<CRLF>\r\n");
  } else if (is(line, "RSET")) {
    email_free(&c->cur);
    say(c, "250 reset\r\n");
  } else if (is(line, "NOOP")) {
    say(c, "250 ok\r\n");
  } else if (is(line, "QUIT")) {
    c->quitting = 1;
    say(c, "221 bye\r\n");
  } else {
    say(c, "502 command not implemented\r\n");
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  session *c = container_of((uv_tcp_t *)st, session, tcp);
  if (nread < 0) {
    free(buf->base);
    return end_session(c);
  }
  int fail = spine_buf_append(&c->in, buf->base, (size_t)nread);
  free(buf->base);
  if (fail) return end_session(c);
  size_t used = 0;
  char *text = c->in.data;
  for (;;) {
    char *nl = memchr(text + used, '\n', c->in.len - used);
    if (!nl) break;
    size_t n = (size_t)(nl - (text + used));
    char *line = text + used;
    used += n + 1;
    if (n && line[n - 1] == '\r') n--;
    line[n] = '\0';
    if (c->mode == DATA)
      data_line(c, line, n);
    else
      command(c, line);
    if (c->quitting || uv_is_closing((uv_handle_t *)&c->tcp)) break;
  }
  memmove(c->in.data, text + used, c->in.len - used);
  c->in.len -= used;
  if (c->in.len > MAX_LINE) {
    c->quitting = 1;
    say(c, "500 line too long\r\n");
  }
}

static void on_connection(uv_stream_t *server, int status) {
  spine_sim_smtp *s = container_of((uv_tcp_t *)server, spine_sim_smtp, listener);
  if (status < 0 || s->closing) return;
  session *c = calloc(1, sizeof *c);
  if (!c) return;
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  s->open_handles++;
  c->next = s->sessions;
  if (s->sessions) s->sessions->prev = c;
  s->sessions = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
    return end_session(c);
  say(c, "220 127.0.0.1 ESMTP spine simulate\r\n");
}

/* ---- the sink ---- */

int spine_sim_smtp_start(uv_loop_t *loop, int port, double reject_rate, uint64_t seed,
                         spine_sim_smtp **out, spine_err *e) {
  *out = NULL;
  spine_sim_smtp *s = calloc(1, sizeof *s);
  if (!s) return spine_err_set(e, UV_ENOMEM, "simulate", "smtp", "out of memory");
  s->loop = loop;
  s->reject_rate = reject_rate;
  s->rng = (seed ? seed : 1) * 0x9E3779B97F4A7C15ULL + 7;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_init(loop, &s->listener);
  s->open_handles = 1;
  int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (rc) {
    spine_sim_smtp_close(s);
    return spine_err_set(e, rc, "simulate", "smtp-port", "cannot listen on 127.0.0.1:%d: %s", port,
                         uv_strerror(rc));
  }
  *out = s;
  return 0;
}

void spine_sim_smtp_set_down(spine_sim_smtp *s, int down) {
  s->down = down;
}

int spine_sim_smtp_port(const spine_sim_smtp *s) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len)) return 0;
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int json_or_null(spine_buf *b, const char *s) {
  return s ? spine_log_json_string(b, s, strlen(s)) : spine_buf_puts(b, "null");
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int spine_sim_smtp_effects(const spine_sim_smtp *s, spine_buf *b) {
  int rc = spine_buf_puts(b, "\"emails\":[");
  const char **keys = calloc((size_t)s->n + 1, sizeof *keys);
  int nkeys = 0;
  for (int i = 0; i < s->n && !rc; i++) {
    const email *m = &s->mails[i];
    if (m->key && keys) keys[nkeys++] = m->key;
    rc = spine_buf_puts(b, i ? ",{\"from\":" : "{\"from\":");
    if (!rc) rc = json_or_null(b, m->from);
    if (!rc) rc = spine_buf_puts(b, ",\"to\":[");
    for (int j = 0; j < m->nto && !rc; j++) {
      if (j) rc = spine_buf_putc(b, ',');
      if (!rc) rc = json_or_null(b, m->to[j]);
    }
    if (!rc) rc = spine_buf_puts(b, "],\"subject\":");
    if (!rc) rc = json_or_null(b, m->subject);
    if (!rc) rc = spine_buf_puts(b, ",\"message_id\":");
    if (!rc) rc = json_or_null(b, m->message_id);
    if (!rc) rc = spine_buf_puts(b, ",\"x_idempotency_key\":");
    if (!rc) rc = json_or_null(b, m->key);
    if (!rc) rc = spine_buf_puts(b, ",\"body\":");
    if (!rc) rc = json_or_null(b, m->body);
    if (!rc) rc = spine_buf_putc(b, '}');
  }
  int unique = 0;
  if (keys) {
    qsort(keys, (size_t)nkeys, sizeof *keys, cmp_str);
    for (int i = 0; i < nkeys; i++)
      if (!i || strcmp(keys[i], keys[i - 1])) unique++;
    free(keys);
  }
  if (!rc)
    rc = spine_buf_printf(b,
                          "],\"emails_unique_keys\":%d,\"emails_rejected\":%d,"
                          "\"emails_deferred\":%d,\"smtp_down\":%s",
                          unique, s->rejected, s->deferred, s->down ? "true" : "false");
  return rc;
}

static void on_listener_closed(uv_handle_t *h) {
  spine_sim_smtp *s = container_of((uv_tcp_t *)h, spine_sim_smtp, listener);
  for (int i = 0; i < s->n; i++)
    email_free(&s->mails[i]);
  free(s->mails);
  s->mails = NULL;
  s->n = 0;
  if (--s->open_handles == 0) free(s);
}

void spine_sim_smtp_close(spine_sim_smtp *s) {
  if (!s || s->closing) return;
  s->closing = 1;
  for (session *c = s->sessions; c; c = c->next)
    end_session(c);
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
