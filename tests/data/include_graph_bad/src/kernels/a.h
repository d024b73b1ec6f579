// Same component as a.cpp.
