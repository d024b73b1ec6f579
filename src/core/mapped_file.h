// Read-only memory map of a whole file (RAII). Weights are used in place from the map.
#pragma once

#include <cstddef>
#include <string>

namespace qvl {

class MappedFile {
 public:
  // Throws qvl::Error (kNotFound / kIo) naming the path.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Tells the kernel this process no longer needs the whole pages inside [begin, begin + bytes) of a
// read-only file mapping (e.g. a tensor repacked into its own buffer): they leave the resident set
// and are read back from the file if touched again. A hint (no error, nothing lost): memory that
// is not a file mapping is left as it is, short of swapping.
void drop_mapped_pages(const void* begin, size_t bytes);

// Reads a whole (small) file into a string, refusing files above max_bytes.
std::string read_text_file(const std::string& path, size_t max_bytes = size_t(256) << 20);

}  // namespace qvl
