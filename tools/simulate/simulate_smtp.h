/* The provider simulator's SMTP sink: a real SMTP server on 127.0.0.1 that accepts mail the
 * way a provider's inbox would, records every message (envelope, subject, idempotency key,
 * body) for GET /_sim/effects, and can refuse a fraction of them (554) to play a mailbox that
 * bounces. In memory only; on the simulator's loop. */
#ifndef SPINE_SIMULATE_SMTP_H
#define SPINE_SIMULATE_SMTP_H

#include <stdint.h>

#include "buf.h"
#include "err.h"

struct uv_loop_s;
typedef struct spine_sim_smtp spine_sim_smtp;

/* Listens on 127.0.0.1:`port` (0 picks one). `reject_rate` (0-1) of the messages are refused
 * after their data, drawn from `seed` so runs are reproducible. */
int spine_sim_smtp_start(struct uv_loop_s *loop, int port, double reject_rate, uint64_t seed,
                         spine_sim_smtp **out, spine_err *e);
int spine_sim_smtp_port(const spine_sim_smtp *s);
/* While down, every message is deferred after its data (451: a transient failure). */
void spine_sim_smtp_set_down(spine_sim_smtp *s, int down);
/* Appends the members "emails":[{from, to, subject, message_id, x_idempotency_key, body}],
 * "emails_unique_keys": n, "emails_rejected": n, "emails_deferred": n, "smtp_down": bool (no
 * braces: part of the effects object). */
int spine_sim_smtp_effects(const spine_sim_smtp *s, spine_buf *b);
/* Closes the listener and every session; frees `s` once the loop has run their closes. */
void spine_sim_smtp_close(spine_sim_smtp *s);

#endif
