/* lamp command-line tool: the context's end, shared by every command. */
#ifndef LAMP_CLI_CONTEXT_H
#define LAMP_CLI_CONTEXT_H

#include "lamp/context.h"

/* Prints the kernel timing table to stderr when profiling is on (LAMP_PROFILE=1), then
 * releases the context. The library itself never prints. */
void lamp_cli_context_release(lamp_context *ctx);

#endif
