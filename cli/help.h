/* lamp command-line tool: the --help convention every command follows. */
#ifndef LAMP_CLI_HELP_H
#define LAMP_CLI_HELP_H

#include <string.h>

/* Nonzero when an argument asks for help ("--help" or "-h"): the command then prints its usage
 * to stdout and returns 0 without doing its job. */
static inline int lamp_cli_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

#endif
