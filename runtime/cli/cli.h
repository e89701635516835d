/* The command-line interface: one file per command, each exporting spine_cli_<command>().
 * Each takes argv after the command word's position (argv[0] is the command word), prints its
 * answer on stdout (one JSON object with --json), logs on stderr, and returns the exit status:
 * 0 done, 1 rejected request, 2 usage error. */
#ifndef SPINE_CLI_H
#define SPINE_CLI_H

int spine_cli_db(int argc, char **argv);

#endif
