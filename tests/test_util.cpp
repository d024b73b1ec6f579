#include "test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace qvl::test {

std::string data_dir() { return QVL_TEST_DATA_DIR; }
std::string golden_dir() { return data_dir() + "/golden"; }
std::string tiny_model_dir() { return data_dir() + "/tiny-qwen3-vl"; }

std::shared_ptr<Model> tiny_model(int64_t context, const std::string& weights, const std::string& kv) {
  ModelOptions o;
  o.threads = 2;
  o.context_length = context;
  o.weights_type = weights;
  o.kv_cache_type = kv;
  return Model::load(tiny_model_dir(), o);
}

GeneratorParams greedy(int64_t max_new_tokens) {
  GeneratorParams p;
  p.max_new_tokens = max_new_tokens;
  p.stop_at_eos = false;
  return p;
}

std::vector<int32_t> generate(Generator& g) {
  std::vector<int32_t> out;
  while (!g.is_done()) {
    g.generate_next_token();
    out.push_back(g.next_token());
  }
  return out;
}

std::string temp_dir() {
  // Removed when the test process exits normally, so repeated runs do not fill /tmp.
  struct ScratchFolder {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("qvl_test_" + std::to_string(::getpid()));
    ScratchFolder() { std::filesystem::create_directories(path); }
    ~ScratchFolder() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const ScratchFolder folder;
  return folder.path.string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string altered_tiny_model(const std::string& name, const std::function<void(const Bf16Weights& weight)>& edit) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(temp_dir()) / name;
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(tiny_model_dir()))
    if (e.path().filename() != "model.safetensors")
      fs::copy_file(e.path(), dir / e.path().filename(), fs::copy_options::overwrite_existing);
  std::string bytes = read_file(tiny_model_dir() + "/model.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_len));
  edit([&](const std::string& tensor) {
    if (!header.contains(tensor)) throw std::runtime_error("the tiny model has no tensor " + tensor);
    const nlohmann::json& t = header[tensor];
    if (t["dtype"] != "BF16") throw std::runtime_error(tensor + " is not BF16");
    const uint64_t begin = 8 + header_len + t["data_offsets"][0].get<uint64_t>();
    const uint64_t end = 8 + header_len + t["data_offsets"][1].get<uint64_t>();
    if (begin % 2 != 0 || end > bytes.size()) throw std::runtime_error(tensor + " is misplaced in the file");
    return std::span<uint16_t>(reinterpret_cast<uint16_t*>(bytes.data() + begin), (end - begin) / 2);
  });
  write_file((dir / "model.safetensors").string(), bytes);
  return dir.string();
}

std::vector<float> read_f32(const std::string& path) {
  std::string bytes = read_file(path);
  if (bytes.size() % 4 != 0) throw std::runtime_error(path + ": size is not a multiple of 4");
  std::vector<float> out(bytes.size() / 4);
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(out.data()));
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) throw std::runtime_error("size mismatch");
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

float max_abs(const std::vector<float>& a) {
  float m = 0.0f;
  for (float v : a) m = std::max(m, std::fabs(v));
  return m;
}

namespace {

// The qvl::Error `fn` throws; a test failure (and nothing) when it throws another type or nothing.
std::optional<Error> caught_error(const std::function<void()>& fn, const std::string& context) {
  const std::string where = context.empty() ? "" : context + ": ";
  try {
    fn();
  } catch (const Error& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << where << "threw a non-qvl exception: " << e.what();
    return std::nullopt;
  }
  ADD_FAILURE() << where << "expected a qvl::Error, nothing was thrown";
  return std::nullopt;
}

}  // namespace

Error error_of(const std::function<void()>& fn, const std::string& context) {
  std::optional<Error> e = caught_error(fn, context);
  return e ? *e : Error(ErrorKind::kInternal, "no qvl::Error was thrown");
}

std::string expect_error(const std::function<void()>& fn, ErrorKind kind, std::initializer_list<std::string> fragments,
                         const std::string& context) {
  const std::optional<Error> e = caught_error(fn, context);
  if (!e) return {};
  const std::string message = e->what();
  const std::string where = context.empty() ? "" : context + ": ";
  EXPECT_EQ(static_cast<int>(e->kind()), static_cast<int>(kind))
      << where << "expected " << error_kind_name(kind) << ", got " << error_kind_name(e->kind()) << ": " << message;
  EXPECT_GT(message.size(), 10u) << where << "the message says too little: " << message;
  for (const std::string& f : fragments)
    EXPECT_NE(message.find(f), std::string::npos) << where << "'" << f << "' not in: " << message;
  return message;
}

size_t argmax(const std::vector<float>& logits) {
  return static_cast<size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

double top_margin(const std::vector<float>& logits) {
  float first = -INFINITY, second = -INFINITY;
  for (float x : logits) {
    if (x > first) {
      second = first;
      first = x;
    } else if (x > second) {
      second = x;
    }
  }
  return double(first) - second;
}

double kl_divergence(const std::vector<float>& ref, const std::vector<float>& got) {
  auto log_softmax = [](const std::vector<float>& l) {
    const double mx = *std::max_element(l.begin(), l.end());
    double z = 0;
    for (float v : l) z += std::exp(v - mx);
    std::vector<double> out(l.size());
    for (size_t i = 0; i < l.size(); ++i) out[i] = l[i] - mx - std::log(z);
    return out;
  };
  const auto a = log_softmax(ref), b = log_softmax(got);
  double kl = 0;
  for (size_t i = 0; i < a.size(); ++i) kl += std::exp(a[i]) * (a[i] - b[i]);
  return kl;
}

}  // namespace qvl::test
