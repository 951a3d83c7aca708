/* lamp plan: the memory plan of a model file for a batch shape, and the table that it and
 * `lamp train --dry-run` print. */
#ifndef LAMP_CLI_PLAN_H
#define LAMP_CLI_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "lamp/lamp.h"

/* Prints the plans of f32 and stored weights (p[0], p[1]), each without and with recomputation
 * (p[w][0], p[w][1]), in MiB; prompt[w][r] is what the prompt and optimiser add (0: none). */
void plan_table(FILE *out, const lamp_model_plan p[2][2], const uint64_t prompt[2][2]);

/* `lamp plan [--model PATH] [--batch B] [--tokens T] [--prompt P] [--outputs M] [--labels K]`.
 * argv holds the arguments after "plan". */
int lamp_cli_plan(int argc, char **argv);

#endif
