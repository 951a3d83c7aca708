/* The MPI transport of data-parallel training (lamp/mpi.h); built only with LAMP_WITH_MPI. */
#include "lamp/mpi.h"

static int lamp__mpi_sum(void *user, double *data, size_t count) {
  MPI_Comm comm = *(MPI_Comm *)user;
  if (count > (size_t)INT32_MAX) return 1;
  int rank = 0;
  if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS) return 1;
  /* reduce then broadcast: one order of additions, the same result on every rank */
  int rc = MPI_Reduce(rank == 0 ? MPI_IN_PLACE : data, rank == 0 ? data : NULL, (int)count,
                      MPI_DOUBLE, MPI_SUM, 0, comm);
  if (rc == MPI_SUCCESS) rc = MPI_Bcast(data, (int)count, MPI_DOUBLE, 0, comm);
  return rc != MPI_SUCCESS;
}

lamp_status lamp_mpi_reducer_init(lamp_reducer *red, MPI_Comm *comm) {
  if (!red || !comm) return LAMP_ERR_INVALID_ARGUMENT;
  int rank = 0, size = 0;
  if (MPI_Comm_rank(*comm, &rank) != MPI_SUCCESS || MPI_Comm_size(*comm, &size) != MPI_SUCCESS ||
      size < 1)
    return LAMP_ERR_INVALID_ARGUMENT;
  red->rank = (size_t)rank;
  red->size = (size_t)size;
  red->sum = lamp__mpi_sum;
  red->user = comm;
  return LAMP_OK;
}

lamp_status lamp_mpi_same(MPI_Comm comm, uint64_t value, int *same) {
  if (!same) return LAMP_ERR_INVALID_ARGUMENT;
  uint64_t lo = 0, hi = 0;
  if (MPI_Allreduce(&value, &lo, 1, MPI_UINT64_T, MPI_MIN, comm) != MPI_SUCCESS ||
      MPI_Allreduce(&value, &hi, 1, MPI_UINT64_T, MPI_MAX, comm) != MPI_SUCCESS)
    return LAMP_ERR_IO;
  *same = lo == hi;
  return LAMP_OK;
}
