#include "kernels/a.h"  // closes the circle a.cpp -> b.h -> a.h
