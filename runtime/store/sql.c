/* The texts and prepared names of the engine's statements (sql.h). */
#include "sql.h"

static const char *const texts[] = {
#define XX(name, text) text,
    SPINE_SQL_LIST(XX)
#undef XX
};

static const char *const names[] = {
#define XX(name, text) "spine_" #name,
    SPINE_SQL_LIST(XX)
#undef XX
};

const char *spine_sql_text(spine_sql_id id) {
  return texts[id];
}

const char *spine_sql_name(spine_sql_id id) {
  return names[id];
}
