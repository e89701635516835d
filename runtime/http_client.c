/* The HTTP client: libcurl multi mapped onto libuv (curl's socket callback starts and stops a
 * uv_poll per socket; its timer callback arms one uv_timer; both feed
 * curl_multi_socket_action). Owns the calls in flight, their buffers (capped) and the handles.
 * Never calls a user callback from inside a curl callback, and never blocks. */
#include "http_client.h"

#include <curl/curl.h>
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
  spine_http_call *calls; /* in flight, doubly linked */
  int running;
  int handles; /* open libuv handles (timer, polls); freed at 0 once closing */
  int closing;
  void (*done)(void *data);
  void *done_data;
};

struct spine_http_call {
  spine_http_client *c;
  CURL *easy;
  struct curl_slist *headers;
  spine_buf body, head;
  size_t max;
  int too_large;
  spine_http_cb cb;
  void *data;
  spine_http_call *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
};

/* One socket curl watches. */
typedef struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  spine_http_client *c;
} sock;

const char *spine_http_verb_name(spine_http_verb m) {
  switch (m) {
    case SPINE_HTTP_GET:
      return "GET";
    case SPINE_HTTP_POST:
      return "POST";
    case SPINE_HTTP_PUT:
      return "PUT";
    case SPINE_HTTP_PATCH:
      return "PATCH";
    case SPINE_HTTP_DELETE:
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

static void free_call(spine_http_call *call) {
  spine_http_client *c = call->c;
  if (call->prev)
    call->prev->next = call->next;
  else
    c->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  c->running--;
  curl_multi_remove_handle(c->multi, call->easy);
  curl_easy_cleanup(call->easy);
  curl_slist_free_all(call->headers);
  spine_buf_free(&call->body);
  spine_buf_free(&call->head);
  free(call);
}

static void classify(spine_http_call *call, CURLcode code, spine_http_response *r) {
  switch (code) {
    case CURLE_OK:
      break;
    case CURLE_OPERATION_TIMEDOUT:
      r->error = SPINE_ETIMEOUT;
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      r->error = SPINE_ETRANSIENT;
      break;
    case CURLE_FILESIZE_EXCEEDED:
      r->error = SPINE_ELIMIT;
      break;
    case CURLE_ABORTED_BY_CALLBACK:
      r->error = SPINE_ECANCELLED;
      break; /* only from close */
    case CURLE_WRITE_ERROR:
      r->error = call->too_large ? SPINE_ELIMIT : SPINE_EIO;
      break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      r->error = SPINE_EINVAL;
      break;
    default:
      r->error = SPINE_EIO;
      break;
  }
  if (code != CURLE_OK) {
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
  long status = 0;
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
  r->status = (int)status;
  r->transient = status >= 500 || status == 429;
  r->headers = spine_buf_str(&call->head);
  r->headers_len = call->head.len;
  r->body = spine_buf_str(&call->body);
  r->body_len = call->body.len;
}

static void finish(spine_http_call *call, CURLcode code) {
  spine_http_response r;
  memset(&r, 0, sizeof r);
  r.headers = r.body = "";
  classify(call, code, &r);
  spine_http_cb cb = call->cb;
  void *data = call->data;
  cb(data, &r); /* before free_call: r points into the call's buffers */
  free_call(call);
}

static void check_done(spine_http_client *c) {
  CURLMsg *msg;
  int left;
  while (c->multi && (msg = curl_multi_info_read(c->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    spine_http_call *call;
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
  spine_http_call *call = userp;
  size_t len = size * n;
  if (call->body.len + len > call->max) {
    call->too_large = 1;
    return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
  }
  return spine_buf_append(&call->body, p, len) ? 0 : len;
}

static size_t on_header(char *p, size_t size, size_t n, void *userp) {
  spine_http_call *call = userp;
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

static int add_header(spine_http_call *call, const char *line) {
  struct curl_slist *l = curl_slist_append(call->headers, line);
  if (!l) return -1;
  call->headers = l;
  return 0;
}

static int bad_header(const char *h) {
  return strpbrk(h, "\r\n") != NULL || !strchr(h, ':');
}

int spine_http_send(spine_http_client *c, const spine_http_request *req, spine_http_cb cb,
                    void *data, spine_http_call **out, spine_err *e) {
  if (out) *out = NULL;
  if (!req->url || c->closing)
    return spine_err_set(e, SPINE_EINVAL, "http", "url", "no URL (or the client is closing)");
  for (const char *const *h = req->headers; h && *h; h++)
    if (bad_header(*h))
      return spine_err_set(e, SPINE_EINVAL, "http", "headers",
                           "a header is not one \"Name: value\" line");
  if (req->traceparent && strpbrk(req->traceparent, "\r\n"))
    return spine_err_set(e, SPINE_EINVAL, "http", "traceparent", "not one line");

  spine_http_call *call = calloc(1, sizeof *call);
  if (!call || !(call->easy = curl_easy_init())) {
    free(call);
    return spine_err_set(e, SPINE_ENOMEM, "http", NULL, "out of memory");
  }
  call->c = c;
  call->cb = cb;
  call->data = data;
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
  int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : 30000;
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  curl_easy_setopt(h, CURLOPT_PRIVATE, call);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10000 ? timeout : 10000));
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, call);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, call->errbuf);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, call->headers);
  if (req->method != SPINE_HTTP_GET)
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, spine_http_verb_name(req->method));
  if (req->body || req->method == SPINE_HTTP_POST) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    if (curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "")) fail = 1;
  }
  if (!fail && curl_multi_add_handle(c->multi, h)) fail = 1;
  if (fail) {
    curl_easy_cleanup(h);
    curl_slist_free_all(call->headers);
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

void spine_http_cancel(spine_http_call *call) {
  free_call(call);
}

const char *spine_http_response_header(const spine_http_response *res, const char *name,
                                       size_t *len) {
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
