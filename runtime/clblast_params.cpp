/* The one C++ file of lamp: CLBlast 1.5 reads its parameters back only through its C++ API
 * (clblast::RetrieveParameters). lamp_tune_gemm needs CLBlast's own parameters for the device
 * as the configuration a tuning result must beat, including in a process where lamp has already
 * overridden them (runtime/tuning.c keeps what this returned before lamp's first override). */
#include "clblast_params.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <clblast.h>

extern "C" int lamp__clblast_retrieve(cl_device_id device, const char *kernel, size_t cap,
                                      size_t name_size, char *names, size_t *values, size_t *n) {
  try {
    std::unordered_map<std::string, size_t> params;
    if (clblast::RetrieveParameters(device, kernel, clblast::Precision::kSingle, params) !=
        clblast::StatusCode::kSuccess)
      return -1;
    std::vector<std::pair<std::string, size_t>> sorted(params.begin(), params.end());
    std::sort(sorted.begin(), sorted.end());
    if (sorted.size() > cap) return -1;
    *n = 0;
    for (const auto &p : sorted) {
      if (p.first.size() >= name_size) return -1;
      std::memcpy(names + *n * name_size, p.first.c_str(), p.first.size() + 1);
      values[(*n)++] = p.second;
    }
    return 0;
  } catch (...) {
    return -1;
  }
}
