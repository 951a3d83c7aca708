/* CLBlast's own parameters for a device (C++ API only in CLBlast 1.5, wrapped for lamp's C).
 * Not installed. */
#ifndef LAMP_CLBLAST_PARAMS_H
#define LAMP_CLBLAST_PARAMS_H

#include <stddef.h>

#include <CL/cl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* clblast::RetrieveParameters for `kernel` in single precision: the values CLBlast currently
 * holds for the device (its database's entry, or the last override), names sorted. Returns 0,
 * or -1 when CLBlast fails or there are more than `cap` parameters or a name of `name_size`
 * characters or more. */
int lamp__clblast_retrieve(cl_device_id device, const char *kernel, size_t cap, size_t name_size,
                           char *names, size_t *values, size_t *n);

#ifdef __cplusplus
}
#endif

#endif
