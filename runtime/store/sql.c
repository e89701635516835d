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

int spine_sql_merged(int id, int *rows) {
  *rows = 0;
  switch (id) {
    case SPINE_SQL_STEP_DONE:
      return SPINE_SQL_STEP_DONE_MANY;
    case SPINE_SQL_STEP_DONE_FENCED:
      return SPINE_SQL_STEP_DONE_FENCED_MANY;
    case SPINE_SQL_FENCE:
      return SPINE_SQL_FENCE_MANY;
    case SPINE_SQL_WF_INSERT:
      return SPINE_SQL_WF_INSERT_MANY;
    case SPINE_SQL_WF_INSERT_CHILD:
      return SPINE_SQL_WF_INSERT_CHILD_MANY;
    case SPINE_SQL_WF_END:
      return SPINE_SQL_WF_END_MANY;
    case SPINE_SQL_WF_LOAD:
      *rows = 1;
      return SPINE_SQL_WF_LOAD_MANY;
    default:
      return -1;
  }
}
