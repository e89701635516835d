/* Outbound email over SMTP through libcurl's multi interface, on the same client (and loop) as
 * outbound HTTP. One message per call, plain text, UTF-8. Known limit: Debian 12's libcurl
 * (7.88) waits inside the loop for the server's reply to the end of the message, and for its
 * reply to QUIT when it closes a connection (curl issue #8555), at most timeout_ms: every
 * other step runs on the loop without blocking it (docs/http.md). */
#ifndef SPINE_MAIL_H
#define SPINE_MAIL_H

#include <stdint.h>

#include "err.h"
#include "http_client.h"

typedef struct spine_mail {
  const char *url;            /* smtp://host:port or smtps://host:port */
  const char *from;           /* envelope and From: address */
  const char *const *to;      /* recipients, NULL-terminated, at least one */
  const char *subject;        /* one line (CR/LF refused) */
  const char *body;           /* text; lines are dot-stuffed and CRLF-terminated on the wire */
  const char *message_id;     /* sent as Message-ID: <message_id@spine>; may be NULL */
  const char *const *headers; /* extra "Name: value" lines, NULL-terminated; may be NULL */
  const char *username;       /* SMTP AUTH, both or neither; never logged */
  const char *password;
  int64_t timeout_ms; /* the whole exchange (default 30 s) */
} spine_mail;

/* Sends `m`. `cb` runs exactly once from the loop unless the call is cancelled
 * (spine_http_client_cancel): res->error 0 when the server accepted the message (res->status holds
 * the last SMTP reply code), else as for HTTP (SPINE_ETIMEOUT, SPINE_ETRANSIENT for a
 * refused connection or a 4xx reply, SPINE_EIO for a 5xx reply or TLS, SPINE_EINVAL);
 * res->transient says whether trying again may work. Returns 0, or SPINE_EINVAL (no
 * recipient, CR/LF in an address, subject or header, a URL that is not smtp/smtps) without
 * calling cb. */
int spine_mail_send(spine_http_client *c, const spine_mail *m, spine_http_client_cb cb, void *data,
                    spine_http_client_call **out, spine_err *e);

#endif
