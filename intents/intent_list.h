/* Every intent of the catalog, one line each: XX(name) registers spine_intent_<name>,
 * defined in intents/<name>.c. */
XX(bench_record)
