/* lamp: data-parallel training over MPI, one rank per device. Present when lamp was built with
 * MPI (CMake option LAMP_WITH_MPI, on when MPI is found); link with MPI as well.
 *
 *   MPI_Comm comm = MPI_COMM_WORLD;
 *   lamp_reducer red;
 *   lamp_mpi_reducer_init(&red, &comm);       rank and size from the communicator
 *   trainer_options.reducer = &red;            each rank: the same model, options and data
 *
 * Ranks must call the trainer in lockstep (every step, evaluation and checkpoint of a run);
 * lamp_trainer_fit does. A failed step, evaluation or checkpoint fails on every rank (see
 * lamp_reducer in lamp/train.h); a rank that dies or leaves the run cannot tell the others, so
 * after an error end the job with MPI_Abort, as `lamp train` does, unless every rank retries. */
#ifndef LAMP_MPI_H
#define LAMP_MPI_H

#include <mpi.h>
#include <stdint.h>

#include "lamp/export.h"
#include "lamp/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A reducer over `*comm` (kept by reference: it must outlive the reducer's use): sums reduce to
 * rank 0 and are broadcast from there, so every rank receives the same bits. */
LAMP_API lamp_status lamp_mpi_reducer_init(lamp_reducer *reducer, MPI_Comm *comm);

/* Whether every rank of `comm` passed the same value (e.g. lamp_trainer_fingerprint). */
LAMP_API lamp_status lamp_mpi_same(MPI_Comm comm, uint64_t value, int *same);

#ifdef __cplusplus
}
#endif

#endif
