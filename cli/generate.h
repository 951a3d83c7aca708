/* lamp generate: text continuation with the frozen model, to see that it is real. */
#ifndef LAMP_CLI_GENERATE_H
#define LAMP_CLI_GENERATE_H

/* `lamp generate [--model FILE|DIR] [--max-tokens N] [--temperature T] [--top-k K] [--seed S]
 * [--chat] [--system TEXT] TEXT...`: greedy by default; prints tokens as they come on stdout and
 * a timing line on stderr. argv holds the arguments after "generate". */
int lamp_cli_generate(int argc, char **argv);

#endif
