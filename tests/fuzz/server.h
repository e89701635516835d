/* The HTTP server of http_server.c on a loop of its own, fed raw bytes: for the harnesses of
 * the HTTP request path (fuzz_http.c, fuzz_webhook.c). One connection per input, over a
 * socketpair, so nothing listens for it and no port is spent per input. */
#ifndef SPINE_FUZZ_SERVER_H
#define SPINE_FUZZ_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "http_server.h"

typedef struct fuzz_server {
  uv_loop_t loop;
  spine_http_server *srv;
} fuzz_server;

/* Starts the server (on 127.0.0.1, a port the system picks; no input goes through it); add
 * routes to fs->srv after. Aborts on failure. */
void fuzz_server_start(fuzz_server *fs, const spine_http_server_opts *o);
/* Serves one connection whose client sends `len` bytes of `data`, then ends its side; runs the
 * loop until the server has answered and closed the connection (its handle freed), and leaves
 * what the server wrote in `response` (reset first). */
void fuzz_server_exchange(fuzz_server *fs, const void *data, size_t len, spine_buf *response);
/* The status of an HTTP/1.x response in `response`, or 0 when it holds none. */
int fuzz_server_status(const spine_buf *response);

#endif
