/* lamp command-line tool: the benchmark suite. */
#ifndef LAMP_CLI_BENCH_H
#define LAMP_CLI_BENCH_H

/* lamp bench: runs bench_suite (built with the benchmarks, beside this executable) with the
 * given arguments. Returns its exit status, or 1 when it cannot be found or started. */
int lamp_cli_bench(int argc, char **argv);

#endif
