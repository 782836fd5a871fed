// goro: Go's concurrency model for C++20. The umbrella header.
#pragma once

#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/net.hpp"
#include "goro/pool.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/sync.hpp"
#include "goro/time.hpp"
