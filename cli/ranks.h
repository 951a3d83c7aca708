/* lamp train under mpirun: one rank per device (cli/ranks.c). Without MPI in the build, or
 * outside mpirun, one process and no reducer. */
#ifndef LAMP_CLI_RANKS_H
#define LAMP_CLI_RANKS_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/train.h"

typedef struct tr_ranks {
  size_t rank, size, local; /* local: the rank among those on this machine */
  int mpi;                  /* MPI was initialised here */
  lamp_reducer reducer;
  void *comm;               /* MPI_Comm storage when mpi */
} tr_ranks;

/* Starts MPI when the process was launched by mpirun (or another MPI launcher); 0 or 1. */
int tr_ranks_init(tr_ranks *r);
/* The device selector of this rank: "" when $LAMP_DEVICE chooses (it may differ per rank),
 * else the local rank's device among those of the default type ("P:D"). */
void tr_ranks_device(const tr_ranks *r, char *out, size_t size);
/* The reducer for the trainer, NULL with one rank. */
const lamp_reducer *tr_ranks_reducer(tr_ranks *r);
/* 1 when every rank passed the same value (always with one rank). */
int tr_ranks_same(tr_ranks *r, uint64_t value);
/* Ends the whole job after a failure on this rank, which has printed why: the other ranks
 * would wait for it forever. Returns `rc` with one rank. */
int tr_ranks_fail(tr_ranks *r, int rc);
void tr_ranks_finish(tr_ranks *r);

#endif
