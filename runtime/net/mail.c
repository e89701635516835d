/* Outbound email: checks a spine_mail, renders it as one RFC 5322 message with CRLF line ends
 * (curl dot-stuffs it on the wire and adds the end-of-data mark) and runs the SMTP upload on the
 * HTTP client's curl multi, so spine_http_client_cancel and the client's close work as for HTTP.
 * Owns the rendered message and the recipient list until the call ends. Never logs; the password
 * goes only to curl. */
#include "mail.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"

#define MAX_LINE 998 /* RFC 5322: characters on a header line, CRLF excluded */

/* What the upload reads from; freed by the HTTP client after the easy handle. */
typedef struct outgoing {
  struct curl_slist *rcpt;
  spine_buf msg;
  size_t pos;
} outgoing;

static void outgoing_free(void *p) {
  outgoing *o = p;
  curl_slist_free_all(o->rcpt);
  spine_buf_free(&o->msg);
  free(o);
}

static size_t on_read(char *buf, size_t size, size_t n, void *userp) {
  outgoing *o = userp;
  size_t room = size * n, left = o->msg.len - o->pos;
  if (room > left) room = left;
  memcpy(buf, o->msg.data + o->pos, room);
  o->pos += room;
  return room;
}

/* ---- checks ---- */

static int has_crlf(const char *s) {
  return strpbrk(s, "\r\n") != NULL;
}

/* One bare address, local@domain: no display name, brackets, list separators or controls
 * (they would change the envelope or add a recipient to the To: line). */
static int bad_address(const char *a) {
  if (!a) return 1;
  const char *at = strchr(a, '@');
  if (!at || at == a || !at[1] || strlen(a) > 254) return 1;
  for (const unsigned char *p = (const unsigned char *)a; *p; p++)
    if (*p <= ' ' || *p == 0x7f || strchr("<>,;\"()[]\\", *p)) return 1;
  return 0;
}

/* Headers this module writes itself: a second one would contradict it. */
static int own_header(const char *name, size_t len) {
  static const char *const own[] = {
      "From",       "To",           "Subject",      "Date",
      "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"};
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    if (strlen(own[i]) == len && !strncasecmp(own[i], name, len)) return 1;
  return 0;
}

/* "Name: value" on one line, the name printable ASCII without ':'. */
static const char *bad_header(const char *h) {
  size_t n = 0;
  while (h[n] > ' ' && h[n] < 0x7f && h[n] != ':')
    n++;
  if (!n || h[n] != ':' || has_crlf(h)) return "is not one \"Name: value\" line";
  if (strlen(h) > MAX_LINE) return "is longer than 998 bytes";
  if (own_header(h, n)) return "is one Spine writes itself";
  return NULL;
}

/* smtp:// or smtps://, a host, no credentials in the URL (they go in username/password, which
 * never reach a message). */
static int bad_url(const char *u, int *tls) {
  size_t skip;
  if (!u) return 1;
  if (!strncasecmp(u, "smtp://", 7))
    skip = 7, *tls = 0;
  else if (!strncasecmp(u, "smtps://", 8))
    skip = 8, *tls = 1;
  else
    return 1;
  size_t auth = strcspn(u + skip, "/?#");
  return auth == 0 || memchr(u + skip, '@', auth) || strpbrk(u, "\r\n \t");
}

static int check(const spine_mail *m, int *tls, spine_err *e) {
  static const char where[] = "mail";
  if (bad_url(m->url, tls))
    return spine_err_set(e, SPINE_EINVAL, where, "url",
                         "not an smtp:// or smtps:// URL with a host and no credentials");
  if (bad_address(m->from))
    return spine_err_set(e, SPINE_EINVAL, where, "from",
                         "not one address local@domain (no CR/LF, spaces, <>, or display name)");
  if (!m->to || !m->to[0])
    return spine_err_set(e, SPINE_EINVAL, where, "to", "no recipient (at least one is needed)");
  for (int i = 0; m->to[i]; i++)
    if (bad_address(m->to[i])) {
      char field[32];
      snprintf(field, sizeof field, "to[%d]", i);
      return spine_err_set(e, SPINE_EINVAL, where, field,
                           "not one address local@domain (no CR/LF, spaces, <>, or display name)");
    }
  if (m->subject && (has_crlf(m->subject) || strlen(m->subject) > MAX_LINE - 9))
    return spine_err_set(e, SPINE_EINVAL, where, "subject", "not one line of at most 989 bytes");
  if (m->message_id &&
      (!*m->message_id || strpbrk(m->message_id, "\r\n\t <>@") || strlen(m->message_id) > 200))
    return spine_err_set(e, SPINE_EINVAL, where, "message_id",
                         "not 1 to 200 bytes without CR/LF, spaces, <, > or @");
  for (int i = 0; m->headers && m->headers[i]; i++) {
    const char *why = bad_header(m->headers[i]);
    if (why) {
      char field[32];
      snprintf(field, sizeof field, "headers[%d]", i);
      return spine_err_set(e, SPINE_EINVAL, where, field, "%s", why);
    }
  }
  if (!m->username != !m->password)
    return spine_err_set(e, SPINE_EINVAL, where, m->username ? "password" : "username",
                         "username and password go together");
  return 0;
}

/* ---- the message ---- */

static int put_date(spine_buf *b) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  return spine_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
                          tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                          tm.tm_sec);
}

/* The body with every line ending (CRLF, LF or a lone CR) as CRLF, the last line ended too. */
static int put_body(spine_buf *b, const char *s) {
  int rc = 0;
  while (*s && !rc) {
    size_t n = strcspn(s, "\r\n");
    rc = spine_buf_append(b, s, n);
    if (!rc) rc = spine_buf_append(b, "\r\n", 2);
    s += n;
    if (*s == '\r' && s[1] == '\n') s++;
    if (*s) s++;
  }
  return rc;
}

static int render(const spine_mail *m, spine_buf *b) {
  int rc = spine_buf_printf(b, "From: %s\r\nTo: ", m->from);
  size_t line = 4; /* "To: ", folded before a recipient that would pass 78 columns */
  for (int i = 0; m->to[i] && !rc; i++) {
    size_t n = strlen(m->to[i]);
    if (i && line + 2 + n > 78) {
      rc = spine_buf_puts(b, ",\r\n ");
      line = 1;
    } else if (i) {
      rc = spine_buf_puts(b, ", ");
      line += 2;
    }
    if (!rc) rc = spine_buf_puts(b, m->to[i]);
    line += n;
  }
  if (!rc) rc = spine_buf_printf(b, "\r\nSubject: %s\r\n", m->subject ? m->subject : "");
  if (!rc) rc = put_date(b);
  if (!rc && m->message_id) rc = spine_buf_printf(b, "Message-ID: <%s@spine>\r\n", m->message_id);
  if (!rc)
    rc = spine_buf_puts(b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                           "Content-Transfer-Encoding: 8bit\r\n");
  for (int i = 0; m->headers && m->headers[i] && !rc; i++)
    rc = spine_buf_printf(b, "%s\r\n", m->headers[i]);
  if (!rc) rc = spine_buf_puts(b, "\r\n");
  if (!rc && m->body) rc = put_body(b, m->body);
  return rc;
}

int spine_mail_send(spine_http_client *c, const spine_mail *m, spine_http_client_cb cb, void *data,
                    spine_http_client_call **out, spine_err *e) {
  if (out) *out = NULL;
  int tls = 0;
  int rc = check(m, &tls, e);
  if (rc) return rc;
  outgoing *o = calloc(1, sizeof *o);
  CURL *h = o ? curl_easy_init() : NULL;
  int fail = !h || render(m, &o->msg);
  for (int i = 0; !fail && m->to[i]; i++) {
    struct curl_slist *l = curl_slist_append(o->rcpt, m->to[i]);
    if (!l) fail = 1;
    if (l) o->rcpt = l;
  }
  if (fail) {
    if (h) curl_easy_cleanup(h);
    if (o) outgoing_free(o);
    return spine_err_set(e, SPINE_ENOMEM, "mail", NULL, "out of memory");
  }
  curl_easy_setopt(h, CURLOPT_URL, m->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, m->from);
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, o->rcpt);
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(h, CURLOPT_READDATA, o);
  curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)o->msg.len);
  if (m->username) {
    curl_easy_setopt(h, CURLOPT_USERNAME, m->username);
    curl_easy_setopt(h, CURLOPT_PASSWORD, m->password);
    /* smtp:// with a password: STARTTLS or nothing, never the password in the clear */
    if (!tls) curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
  }
  return spine_http_client_start(c, h, SPINE_HTTP_CLIENT_PROTO_SMTP, m->timeout_ms, o,
                                 outgoing_free, cb, data, out, e);
}
