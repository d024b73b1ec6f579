// Transitional: the UTF-8 helpers moved to core/utf8.h. This forward keeps code written against
// the old path building (tools/qvl/options.cpp on main, edited elsewhere right now); delete it once
// nothing includes "tokenizer/utf8.h".
#pragma once

#include "core/utf8.h"
