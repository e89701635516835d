/* Random (version 4) UUIDs for workflow ids, trace ids and ctx.uuid (which records it). */
#ifndef SPINE_UUID_H
#define SPINE_UUID_H

/* Writes "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and a NUL into out[37]. */
void spine_uuid(char out[37]);
/* Writes 32 lowercase hex digits (a W3C trace id) and a NUL into out[33]. */
void spine_uuid_trace_id(char out[33]);

#endif
