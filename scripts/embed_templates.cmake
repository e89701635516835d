# Writes OUT: a C array of {name, text} for every file in FILES ('|'-separated), so that
# `spine new` needs no files at run time (as the SQL migrations: scripts/embed_sql.cmake).
set(body "/* Generated from templates/ by scripts/embed_templates.cmake: do not edit. */\n#include \"cli.h\"\n\nconst spine_cli__template spine_cli__templates[] = {\n")
string(REPLACE "|" ";" FILES "${FILES}")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME)
  file(READ ${f} text)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "\"" "\\\"" text "${text}")
  string(REPLACE "?" "\\?" text "${text}") # no trigraphs
  string(REPLACE "\n" "\\n\"\n\"" text "${text}")
  string(APPEND body "  {\"${name}\", \"${text}\"},\n")
endforeach()
string(APPEND body "  {0, 0},\n};\n")
file(WRITE ${OUT}.tmp "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
