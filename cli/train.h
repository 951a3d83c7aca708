/* lamp command-line tool: the training jobs. Each takes the arguments after the command name
 * and returns the process exit status (0 success, 1 failure, 2 bad usage, 128 + the signal when interrupted: 130 SIGINT, 143 SIGTERM). */
#ifndef LAMP_CLI_TRAIN_H
#define LAMP_CLI_TRAIN_H

/* lamp train: tune a soft prompt on a task's train split, evaluating on its dev split. */
int lamp_cli_train(int argc, char **argv);

/* lamp eval: a checkpoint (or the model without a prompt) on a split. */
int lamp_cli_eval(int argc, char **argv);

/* lamp predict: the label of each text given as an argument or read one per line from stdin. */
int lamp_cli_predict(int argc, char **argv);

#endif
