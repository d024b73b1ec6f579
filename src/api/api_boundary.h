// The public API's exception boundary: every entry point runs its work through
// translate_exceptions so callers see only qvl::Error. The boundary itself is generic and lives in
// core/ (lower layers use it too); this header is the API's name for it.
#pragma once

#include "core/error_boundary.h"
