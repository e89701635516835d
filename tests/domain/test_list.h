/* The energy domain's C tests (spine_ctest_domain, which links spine_domain), one line each:
 * XX(name) runs TEST_IMPL(name). The runtime's are tests/c/test_list.h. */
XX(catalog_migrates_before_the_engine)
XX(catalog_intents_run_in_the_engine)
