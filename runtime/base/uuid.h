/* UUIDs: time-ordered (version 7) for workflow ids, random (version 4) for ctx.uuid (which
 * records it), and trace ids. */
#ifndef SPINE_UUID_H
#define SPINE_UUID_H

/* Writes "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and a NUL into out[37]. */
void spine_uuid(char out[37]);
/* Writes a version 7 UUID, "tttttttt-tttt-7xxx-yxxx-xxxxxxxxxxxx": the first 48 bits are the
 * wall clock in milliseconds, the other 74 random. Ids made later sort later (to the
 * millisecond), so a workflow's rows and its steps' rows land at the right edge of their
 * primary keys instead of anywhere in them: the pages a worker writes stay few and in cache
 * however long the history grows (docs/performance.md). */
void spine_uuid_ordered(char out[37]);
/* Writes 32 lowercase hex digits (a W3C trace id) and a NUL into out[33]. */
void spine_uuid_trace_id(char out[33]);

#endif
