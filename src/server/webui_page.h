// The chat page served at GET /: src/server/webui/index.html, embedded at build time
// (embed_file.cmake writes the generated source).
#pragma once

#include <cstddef>

namespace qvl::server {

extern const unsigned char kWebuiPage[];
extern const size_t kWebuiPageSize;

}  // namespace qvl::server
