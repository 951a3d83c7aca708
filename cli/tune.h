/* lamp tune: GEMM tuning with each candidate evaluated in a child process. */
#ifndef LAMP_CLI_TUNE_H
#define LAMP_CLI_TUNE_H

/* `lamp tune [--budget N] [--shape MxNxK]... [--in-process]` */
int lamp_cli_tune(int argc, char **argv);

/* `lamp tune-eval --device P:D [--shape MxNxK]... [--set Kernel:N=V,...]... [--config ...]...`:
 * times candidates, interleaved, and prints "seconds T1 T2 ..." for each (-1 for a failed
 * shape). Used by lamp_cli_tune. */
int lamp_cli_tune_eval(int argc, char **argv);

#endif
