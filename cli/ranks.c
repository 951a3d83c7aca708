/* lamp train under mpirun (cli/ranks.h). */
#include "ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LAMP_WITH_MPI
#include "lamp/mpi.h"
#endif

/* Launchers set one of these in every rank's environment. */
static int tr_launched(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

int tr_ranks_init(tr_ranks *r) {
  memset(r, 0, sizeof(*r));
  r->size = 1;
#ifdef LAMP_WITH_MPI
  if (!tr_launched()) return 0;
  int ok = 0;
  if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
    fprintf(stderr, "lamp train: MPI_Init failed\n");
    return 1;
  }
  r->mpi = 1;
  MPI_Comm *world = malloc(sizeof(MPI_Comm)), local;
  if (world) {
    *world = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0, size = 1, lr = 0;
    ok = MPI_Comm_rank(*world, &rank) == MPI_SUCCESS && MPI_Comm_size(*world, &size) == MPI_SUCCESS &&
         MPI_Comm_split_type(*world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) ==
             MPI_SUCCESS;
    if (ok) {
      MPI_Comm_rank(local, &lr);
      MPI_Comm_free(&local);
      r->rank = (size_t)rank;
      r->size = (size_t)size;
      r->local = (size_t)lr;
      r->comm = world;
      ok = lamp_mpi_reducer_init(&r->reducer, world) == LAMP_OK;
    }
  }
  if (!ok) {
    fprintf(stderr, "lamp train: cannot set up the MPI ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
#else
  if (tr_launched())
    fprintf(stderr, "lamp train: note: launched by an MPI launcher, but this lamp was built "
                    "without MPI; each process trains alone\n");
#endif
  return 0;
}

void tr_ranks_device(const tr_ranks *r, char *out, size_t size) {
  out[0] = '\0';
  const char *env = getenv("LAMP_DEVICE");
  if (r->size <= 1 || (env && env[0])) return;
  lamp_device_info infos[64];
  size_t count = 0, def = 0, same[64], n = 0;
  if (lamp_device_list(infos, 64, &count) != LAMP_OK) return;
  if (count > 64) count = 64;
  if (lamp_device_select(infos, count, NULL, &def, NULL, 0) != LAMP_OK) return;
  for (size_t i = 0; i < count; i++)
    if (infos[i].type == infos[def].type) same[n++] = i;
  const lamp_device_info *d = &infos[same[r->local % n]];
  snprintf(out, size, "%u:%u", d->platform_index, d->device_index);
}

const lamp_reducer *tr_ranks_reducer(tr_ranks *r) { return r->size > 1 ? &r->reducer : NULL; }

int tr_ranks_same(tr_ranks *r, uint64_t value) {
#ifdef LAMP_WITH_MPI
  int same = 1;
  if (r->size > 1 && lamp_mpi_same(*(MPI_Comm *)r->comm, value, &same) != LAMP_OK) return 0;
  return same;
#else
  (void)r;
  (void)value;
  return 1;
#endif
}

int tr_ranks_fail(tr_ranks *r, int rc) {
#ifdef LAMP_WITH_MPI
  if (r->size > 1) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, rc ? rc : 1);
  }
#else
  (void)r;
#endif
  return rc;
}

void tr_ranks_finish(tr_ranks *r) {
#ifdef LAMP_WITH_MPI
  if (r->mpi) MPI_Finalize();
  free(r->comm);
#endif
  memset(r, 0, sizeof(*r));
}
