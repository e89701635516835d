/* The HTTP client: libcurl multi mapped onto libuv (curl's socket callback starts and stops a
 * uv_poll per socket; its timer callback arms one uv_timer; both feed
 * curl_multi_socket_action). Owns the calls in flight, their buffers (capped), their parsed
 * URLs and the handles; also runs the SMTP transfers mail.c prepares (spine_http_client_start),
 * reading their outcome by reply code. Never calls a user callback from inside a curl
 * callback, never follows a redirect, and never blocks. */
#include "http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define MAX_HEADER_BYTES              (32 * 1024)

struct spine_http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  spine_http_client_call *calls; /* in flight, doubly linked */
  int running;
  int handles; /* open libuv handles (timer, polls); freed at 0 once closing */
  int closing;
  void (*done)(void *data);
  void *done_data;
};

struct spine_http_client_call {
  spine_http_client *c;
  CURL *easy;
  CURLU *url; /* what the transfer reaches (CURLOPT_CURLU): the reading spine_http_client_dest_of
                 gave; freed after `easy` */
  spine_http_client_proto proto;
  struct curl_slist *headers;
  spine_buf body, head; /* SMTP: head holds the server's last reply line */
  size_t max;
  int too_large;
  void *owned; /* the caller's transfer state (spine_http_client_start), freed after `easy` */
  void (*free_owned)(void *owned);
  spine_http_client_cb cb;
  void *data;
  spine_http_client_call *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
};

/* One socket curl watches. */
typedef struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  spine_http_client *c;
} sock;

const char *spine_http_client_verb_name(spine_http_client_verb m) {
  switch (m) {
    case SPINE_HTTP_CLIENT_GET:
      return "GET";
    case SPINE_HTTP_CLIENT_POST:
      return "POST";
    case SPINE_HTTP_CLIENT_PUT:
      return "PUT";
    case SPINE_HTTP_CLIENT_PATCH:
      return "PATCH";
    case SPINE_HTTP_CLIENT_DELETE:
      return "DELETE";
    default:
      abort();
  }
}

static void maybe_free(spine_http_client *c) {
  if (!c->closing || c->handles) return;
  void (*done)(void *) = c->done;
  void *data = c->done_data;
  free(c);
  if (done) done(data);
}

static void on_handle_closed(uv_handle_t *h) {
  spine_http_client *c = h->data;
  if (h->type == UV_POLL) free(container_of((uv_poll_t *)h, sock, poll));
  c->handles--;
  maybe_free(c);
}

static void free_call(spine_http_client_call *call) {
  spine_http_client *c = call->c;
  if (call->prev)
    call->prev->next = call->next;
  else
    c->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  c->running--;
  /* Removing an unfinished SMTP upload runs curl's DONE step, which (curl 7.88) sends the
   * end-of-data mark and waits for the reply: the server would deliver a truncated message.
   * Without recipients that step does nothing and the connection is dropped. */
  if (call->proto == SPINE_HTTP_CLIENT_PROTO_SMTP)
    curl_easy_setopt(call->easy, CURLOPT_MAIL_RCPT, NULL);
  if (c->multi) curl_multi_remove_handle(c->multi, call->easy);
  curl_easy_cleanup(call->easy);
  curl_url_cleanup(call->url);
  curl_slist_free_all(call->headers);
  spine_buf_free(&call->body);
  spine_buf_free(&call->head);
  if (call->free_owned) call->free_owned(call->owned);
  free(call);
}

/* A failed transfer's error class, from curl's code alone. */
static int error_of(const spine_http_client_call *call, CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return SPINE_ETIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return SPINE_ETRANSIENT;
    case CURLE_FILESIZE_EXCEEDED:
      return SPINE_ELIMIT;
    case CURLE_ABORTED_BY_CALLBACK:
      return SPINE_ECANCELLED; /* only from close */
    case CURLE_WRITE_ERROR:
      return call->too_large ? SPINE_ELIMIT : SPINE_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return SPINE_EINVAL;
    default:
      return SPINE_EIO;
  }
}

/* SMTP: a 4xx or 5xx reply decides (curl reports it as a send error or a weird reply); else
 * the accepted message's last reply code, or curl's code as for HTTP. */
static void classify_smtp(spine_http_client_call *call, CURLcode code, long reply,
                          spine_http_client_response *r) {
  r->headers = spine_buf_str(&call->head);
  r->headers_len = call->head.len;
  if (code == CURLE_OK || reply < 400 || reply > 599) {
    r->status = code == CURLE_OK ? (int)reply : 0;
    return;
  }
  r->status = (int)reply;
  r->error = reply < 500 ? SPINE_ETRANSIENT : SPINE_EIO;
  r->transient = reply < 500;
  const char *why = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
  int n = (int)call->head.len;
  while (n > 0 && (r->headers[n - 1] == '\r' || r->headers[n - 1] == '\n'))
    n--;
  if (n > 100) n = 100;
  snprintf(r->message, sizeof r->message, "%.120s (server: %.*s)", why, n, r->headers);
}

static void classify(spine_http_client_call *call, CURLcode code, spine_http_client_response *r) {
  long status = 0;
  if (code != CURLE_ABORTED_BY_CALLBACK)
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
  if (call->proto == SPINE_HTTP_CLIENT_PROTO_SMTP) {
    classify_smtp(call, code, status, r);
    if (r->error || code == CURLE_OK) return;
  }
  if (code != CURLE_OK) {
    r->error = error_of(call, code);
    const char *why = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
    if (r->error == SPINE_ELIMIT)
      snprintf(r->message, sizeof r->message, "response larger than %zu bytes", call->max);
    else if (r->error == SPINE_ECANCELLED)
      snprintf(r->message, sizeof r->message, "the HTTP client closed");
    else
      snprintf(r->message, sizeof r->message, "%s", why);
    r->transient = r->error == SPINE_ETIMEOUT || r->error == SPINE_ETRANSIENT;
    return;
  }
  r->status = (int)status;
  r->transient = status >= 500 || status == 429;
  r->headers = spine_buf_str(&call->head);
  r->headers_len = call->head.len;
  r->body = spine_buf_str(&call->body);
  r->body_len = call->body.len;
}

static void finish(spine_http_client_call *call, CURLcode code) {
  spine_http_client_response r;
  memset(&r, 0, sizeof r);
  r.headers = r.body = "";
  classify(call, code, &r);
  spine_http_client_cb cb = call->cb;
  void *data = call->data;
  cb(data, &r); /* before free_call: r points into the call's buffers */
  free_call(call);
}

static void check_done(spine_http_client *c) {
  CURLMsg *msg;
  int left;
  while (c->multi && (msg = curl_multi_info_read(c->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    spine_http_client_call *call;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
    finish(call, msg->data.result);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock *s = container_of(h, sock, poll);
  spine_http_client *c = s->c;
  int flags = status < 0 ? CURL_CSELECT_ERR
                         : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                               ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
  int still;
  curl_multi_socket_action(c->multi, s->fd, flags, &still);
  check_done(c);
}

static void on_timer(uv_timer_t *t) {
  spine_http_client *c = container_of(t, spine_http_client, timer);
  int still;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &still);
  check_done(c);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  spine_http_client *c = userp;
  sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, on_handle_closed);
      if (c->multi) curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (!s) {
    s = malloc(sizeof *s);
    if (!s || uv_poll_init_socket(c->loop, &s->poll, fd)) {
      free(s);
      return -1; /* curl fails this transfer */
    }
    s->fd = fd;
    s->c = c;
    s->poll.data = c;
    c->handles++;
    curl_multi_assign(c->multi, fd, s);
  }
  int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static int on_timeout_change(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  spine_http_client *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

int spine_http_client_new(uv_loop_t *loop, spine_http_client **out, spine_err *e) {
  *out = NULL;
  static int inited;
  if (!inited) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
      return spine_err_set(e, SPINE_EIO, "http", NULL, "libcurl failed to initialise");
    inited = 1;
  }
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  if (!(v->features & CURL_VERSION_ASYNCHDNS))
    return spine_err_set(e, SPINE_EINVAL, "http", NULL,
                         "libcurl %s resolves names synchronously (AsynchDNS is required)",
                         v->version);
  spine_http_client *c = calloc(1, sizeof *c);
  if (!c || !(c->multi = curl_multi_init())) {
    free(c);
    return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  }
  c->loop = loop;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->handles = 1;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timeout_change);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  *out = c;
  return 0;
}

void spine_http_client_close(spine_http_client *c, void (*done)(void *data), void *data) {
  c->closing = 1;
  c->done = done;
  c->done_data = data;
  while (c->calls)
    finish(c->calls, CURLE_ABORTED_BY_CALLBACK);
  CURLM *m = c->multi;
  curl_multi_cleanup(m); /* may still tell on_socket to drop cached connections */
  c->multi = NULL;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

int spine_http_client_running(const spine_http_client *c) {
  return c->running;
}

static size_t on_body(char *p, size_t size, size_t n, void *userp) {
  spine_http_client_call *call = userp;
  size_t len = size * n;
  if (call->body.len + len > call->max) {
    call->too_large = 1;
    return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
  }
  return spine_buf_append(&call->body, p, len) ? 0 : len;
}

static size_t on_header(char *p, size_t size, size_t n, void *userp) {
  spine_http_client_call *call = userp;
  size_t len = size * n;
  if (len >= 5 && !memcmp(p, "HTTP/", 5)) {
    spine_buf_reset(&call->head); /* a new response (after 1xx or a redirect): keep the last */
    return len;
  }
  if (call->head.len + len > MAX_HEADER_BYTES) {
    call->too_large = 1;
    return 0;
  }
  return spine_buf_append(&call->head, p, len) ? 0 : len;
}

/* SMTP: curl hands every server reply line to the header callback; keep the last one. */
static size_t on_reply(char *p, size_t size, size_t n, void *userp) {
  spine_http_client_call *call = userp;
  size_t len = size * n;
  spine_buf_reset(&call->head);
  return spine_buf_append(&call->head, p, len < 200 ? len : 200) ? 0 : len;
}

static int add_header(spine_http_client_call *call, const char *line) {
  struct curl_slist *l = curl_slist_append(call->headers, line);
  if (!l) return -1;
  call->headers = l;
  return 0;
}

static int bad_header(const char *h) {
  return strpbrk(h, "\r\n") != NULL || !strchr(h, ':');
}

/* ---- where a URL goes ---- */

static int url_error(spine_err *e, const char *url, const char *why) {
  return spine_err_set(e, SPINE_EINVAL, "http", "url", "\"%.120s\" is not %s", url, why);
}

/* Lower-cases the host and drops one trailing dot ("API.Example." and "api.example" are one
 * name); 0, or -1 when it is empty or too long. */
static int normal_host(const char *host, char out[256]) {
  size_t n = strlen(host);
  if (n && host[n - 1] == '.') n--;
  if (n == 0 || n >= 256) return -1;
  for (size_t i = 0; i < n; i++)
    out[i] = (char)tolower((unsigned char)host[i]);
  out[n] = '\0';
  return 0;
}

/* Parses `url` (absolute, http or https, no scheme guessed) into a new CURLU *out and fills
 * `d`. Returns 0, or SPINE_EINVAL (anything else) / SPINE_ENOMEM with *out NULL. */
static int read_url(const char *url, spine_http_client_dest *d, CURLU **out, spine_err *e) {
  CURLU *u = *out = curl_url();
  if (!u) return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  char *scheme = NULL, *host = NULL, *port = NULL, *zone = NULL;
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
  const char *why = NULL;
  if (rc) {
    why = curl_url_strerror(rc);
  } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
             (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
    why = "an http:// or https:// URL";
  } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) || normal_host(host, d->host)) {
    why = "a URL with a host name";
  } else if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
    why = "a URL Spine calls (an IPv6 zone id)";
  } else if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) {
    why = "a URL with a port";
  } else {
    d->https = !strcmp(scheme, "https");
    d->port = atoi(port);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(zone);
  if (!why) return 0;
  curl_url_cleanup(u);
  *out = NULL;
  if (rc == CURLUE_OUT_OF_MEMORY)
    return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  if (!rc) return url_error(e, url, why);
  char what[128];
  snprintf(what, sizeof what, "a URL (%s)", why);
  return url_error(e, url, what);
}

int spine_http_client_dest_of(const char *url, spine_http_client_dest *out, spine_err *e) {
  memset(out, 0, sizeof *out);
  CURLU *u;
  int rc = read_url(url, out, &u, e);
  curl_url_cleanup(u);
  return rc;
}

int spine_http_client_host_parse(const char *spec, spine_http_client_host *out, spine_err *e) {
  memset(out, 0, sizeof *out);
  size_t n = strlen(spec);
  int plain = n > 0 && n < 300;
  for (size_t i = 0; i < n && plain; i++)
    plain = !strchr("/@?#\\%", spec[i]) && (unsigned char)spec[i] > ' ';
  char url[320];
  snprintf(url, sizeof url, "http://%s/", spec);
  CURLU *u = NULL;
  spine_http_client_dest d;
  if (plain && read_url(url, &d, &u, NULL) == 0) {
    char *port = NULL;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) out->port = atoi(port);
    curl_free(port);
    curl_url_cleanup(u);
    snprintf(out->host, sizeof out->host, "%s", d.host);
    return 0;
  }
  return spine_err_set(e, SPINE_EINVAL, NULL, NULL,
                       "\"%.120s\" is not a host name or host:port (such as auth.example.com or "
                       "auth.example.com:8443)",
                       spec);
}

int spine_http_client_host_match(const spine_http_client_host *h, const spine_http_client_dest *d) {
  return !strcmp(h->host, d->host) && (h->port == 0 || h->port == d->port);
}

/* A call on `easy` (NULL: a new one). Returns NULL when out of memory; `easy` is then freed. */
static spine_http_client_call *call_new(spine_http_client *c, CURL *easy, spine_http_client_cb cb,
                                        void *data) {
  spine_http_client_call *call = calloc(1, sizeof *call);
  if (call && !easy) easy = curl_easy_init();
  if (!call || !easy) {
    if (easy) curl_easy_cleanup(easy);
    free(call);
    return NULL;
  }
  call->c = c;
  call->easy = easy;
  call->cb = cb;
  call->data = data;
  return call;
}

/* Sets what every call has, adds it to the multi handle and to the calls in flight. `fail`:
 * setting up went wrong already. On failure frees the call and returns SPINE_ENOMEM. */
static int call_start(spine_http_client_call *call, int64_t timeout_ms, int fail,
                      spine_http_client_call **out, spine_err *e) {
  spine_http_client *c = call->c;
  CURL *h = call->easy;
  int64_t timeout = timeout_ms > 0 ? timeout_ms : 30000;
  curl_easy_setopt(h, CURLOPT_PRIVATE, call);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10000 ? timeout : 10000));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, call->errbuf);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer, never a hop */
  if (!fail && curl_multi_add_handle(c->multi, h)) fail = 1;
  if (fail) {
    curl_easy_cleanup(h);
    curl_url_cleanup(call->url);
    curl_slist_free_all(call->headers);
    if (call->free_owned) call->free_owned(call->owned);
    free(call);
    return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "cannot start the call");
  }
  call->next = c->calls;
  if (c->calls) c->calls->prev = call;
  c->calls = call;
  c->running++;
  if (out) *out = call;
  return 0;
}

int spine_http_client_send(spine_http_client *c, const spine_http_client_request *req,
                           spine_http_client_cb cb, void *data, spine_http_client_call **out,
                           spine_err *e) {
  if (out) *out = NULL;
  if (!req->url || c->closing)
    return spine_err_set(e, SPINE_EINVAL, "http", "url", "no URL (or the client is closing)");
  for (const char *const *h = req->headers; h && *h; h++)
    if (bad_header(*h))
      return spine_err_set(e, SPINE_EINVAL, "http", "headers",
                           "a header is not one \"Name: value\" line");
  if (req->traceparent && strpbrk(req->traceparent, "\r\n"))
    return spine_err_set(e, SPINE_EINVAL, "http", "traceparent", "not one line");
  spine_http_client_dest dest;
  CURLU *u;
  int rc = read_url(req->url, &dest, &u, e);
  if (rc) return rc;

  spine_http_client_call *call = call_new(c, NULL, cb, data);
  if (!call) {
    curl_url_cleanup(u);
    return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  }
  call->url = u;
  call->max = req->max_response ? req->max_response : 1024 * 1024;
  int fail = 0;
  for (const char *const *h = req->headers; h && *h && !fail; h++)
    fail = add_header(call, *h);
  if (!fail && req->traceparent) {
    char tp[256];
    snprintf(tp, sizeof tp, "traceparent: %s", req->traceparent);
    fail = add_header(call, tp);
  }
  if (!fail) fail = add_header(call, "Expect:"); /* no 100-continue round trip before a body */

  CURL *h = call->easy;
  curl_easy_setopt(h, CURLOPT_CURLU, u);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, call);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, call->headers);
  if (req->method != SPINE_HTTP_CLIENT_GET)
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, spine_http_client_verb_name(req->method));
  if (req->body || req->method == SPINE_HTTP_CLIENT_POST) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    if (curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "")) fail = 1;
  }
  return call_start(call, req->timeout_ms, fail, out, e);
}

int spine_http_client_start(spine_http_client *c, void *easy, spine_http_client_proto proto,
                            int64_t timeout_ms, void *owned, void (*free_owned)(void *owned),
                            spine_http_client_cb cb, void *data, spine_http_client_call **out,
                            spine_err *e) {
  if (out) *out = NULL;
  if (c->closing) {
    curl_easy_cleanup(easy);
    if (free_owned) free_owned(owned);
    return spine_err_set(e, SPINE_EINVAL, "http", NULL, "the client is closing");
  }
  spine_http_client_call *call = call_new(c, easy, cb, data);
  if (!call) {
    if (free_owned) free_owned(owned);
    return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  }
  call->proto = proto;
  call->owned = owned;
  call->free_owned = free_owned;
  if (proto == SPINE_HTTP_CLIENT_PROTO_SMTP) {
    curl_easy_setopt(call->easy, CURLOPT_HEADERFUNCTION, on_reply);
    curl_easy_setopt(call->easy, CURLOPT_HEADERDATA, call);
  }
  return call_start(call, timeout_ms, 0, out, e);
}

void spine_http_client_cancel(spine_http_client_call *call) {
  free_call(call);
}

const char *spine_http_client_response_header(const spine_http_client_response *res,
                                              const char *name, size_t *len) {
  size_t n = strlen(name);
  const char *p = res->headers, *end = res->headers + res->headers_len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if ((size_t)(eol - p) > n && p[n] == ':' && !strncasecmp(p, name, n)) {
      const char *v = p + n + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      *len = (size_t)(ve - v);
      return v;
    }
    p = eol + 1;
  }
  *len = 0;
  return NULL;
}
