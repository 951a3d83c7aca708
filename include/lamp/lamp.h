/* lamp: soft-prompt tuning with LAMP on any OpenCL device. The one header to include. */
#ifndef LAMP_LAMP_H
#define LAMP_LAMP_H

#include "lamp/version.h"
#include "lamp/status.h"
#include "lamp/device.h"
#include "lamp/context.h"
#include "lamp/tensor.h"
#include "lamp/gemm.h"
#include "lamp/program.h"
#include "lamp/profile.h"
#include "lamp/tune.h"
#include "lamp/optim.h"
#include "lamp/prompt.h"
#include "lamp/safetensors.h"
#include "lamp/svd.h"
#include "lamp/gguf.h"
#include "lamp/tokenizer.h"
#include "lamp/model.h"
#include "lamp/cache.h"
#include "lamp/data.h"
#include "lamp/train.h"

#endif
