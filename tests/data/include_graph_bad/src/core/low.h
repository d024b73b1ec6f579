#include "api/high.h"  // upward: core must not depend on api
