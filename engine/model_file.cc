#include "engine/model_file.h"

#include "engine/dtype.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fcntl.h>
#include <kj/array.h>
#include <kj/exception.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

namespace huddle::engine {
namespace {

constexpr uint8_t kMagic[8] = {0x89, 'H', 'D', 'M', '\r', '\n', 0x1a, '\n'};
constexpr uint64_t kMaxElements = uint64_t{1} << 40;

uint32_t read_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;  // little-endian hosts only (x86-64, AArch64)
}
uint64_t read_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Read-only mapping of a whole file.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* data, size_t size) : data_(data), size_(size) {}
  Mapping(Mapping&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
  Mapping& operator=(Mapping&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~Mapping() {
    if (data_) munmap(data_, size_);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

std::string quoted(capnp::Text::Reader name) {
  if (name.size() == 0) return "";
  std::string s(name.cStr(), name.size() < 80 ? name.size() : 80);
  return " '" + s + (name.size() > 80 ? "...'" : "'");
}

// Checks the graph and the rest of the message; `fail` throws.
class Validator {
 public:
  Validator(const std::string& file, schema::Model::Reader model, uint64_t weights_bytes)
      : file_(file), model_(model), weights_(weights_bytes) {}

  void run() {
    const auto graph = model_.getGraph();
    const auto tensors = graph.getTensors();
    const size_t n = tensors.size();
    state_.assign(n, kUnavailable);
    for (uint32_t i = 0; i < n; ++i) check_tensor(i, tensors[i]);
    for (uint32_t id : graph.getInputs()) {
      check_index(id, n, "graph input");
      if (state_[id] == kConstant) fail("graph input " + tensor_name(id) + " is a constant");
      state_[id] = kAvailable;
    }
    const auto nodes = graph.getNodes();
    for (uint32_t j = 0; j < nodes.size(); ++j) check_node(j, nodes[j], n);
    if (graph.getOutputs().size() == 0) fail("the graph has no outputs");
    for (uint32_t id : graph.getOutputs()) {
      check_index(id, n, "graph output");
      if (state_[id] == kUnavailable) fail("graph output " + tensor_name(id) + " is never computed");
    }
    check_text(model_.getTask(), "task");
    for (auto label : model_.getLabels()) check_text(label, "label");
    check_preprocess(model_.getPreprocess());
  }

 private:
  enum State : uint8_t { kUnavailable, kAvailable, kConstant };

  [[noreturn]] void fail(const std::string& what) const { throw ModelError(file_ + ": " + what); }

  std::string tensor_name(uint32_t i) const {
    return "tensor " + std::to_string(i) + quoted(model_.getGraph().getTensors()[i].getName());
  }

  void check_text(capnp::Text::Reader text, const char* what) const {
    if (text.size() > kMaxNameBytes)
      fail(std::string(what) + " is " + std::to_string(text.size()) + " bytes (limit " +
           std::to_string(kMaxNameBytes) + ")");
  }

  void check_index(uint32_t id, size_t n, const std::string& what) const {
    if (id >= n) fail(what + " refers to tensor " + std::to_string(id) + " of " + std::to_string(n));
  }

  void check_tensor(uint32_t i, schema::Tensor::Reader t) {
    check_text(t.getName(), "a tensor name");
    const auto raw = static_cast<uint16_t>(t.getDtype());
    if (!dtype_known(raw)) fail(tensor_name(i) + " has an unknown dtype " + std::to_string(raw));
    const DType dtype = static_cast<DType>(raw);
    const size_t esize = dtype_bytes(dtype);
    const auto shape = t.getShape();
    if (shape.size() > kMaxTensorRank)
      fail(tensor_name(i) + " has rank " + std::to_string(shape.size()) + " (limit " +
           std::to_string(kMaxTensorRank) + ")");
    uint64_t elements = 1;
    for (int64_t d : shape) {
      if (d < 0) fail(tensor_name(i) + " has a negative dimension " + std::to_string(d));
      if (d > 0 && elements > kMaxElements / static_cast<uint64_t>(d))
        fail(tensor_name(i) + " has more than 2^40 elements");
      elements *= static_cast<uint64_t>(d);
    }
    const auto quant = t.getQuant();
    const size_t scales = quant.getScale().size();
    if (scales != 0 || quant.getZeroPoint().size() != 0) {
      if (quant.getZeroPoint().size() != scales && quant.getZeroPoint().size() != 0)
        fail(tensor_name(i) + " has " + std::to_string(scales) + " scales but " +
             std::to_string(quant.getZeroPoint().size()) + " zero points");
      const int32_t axis = quant.getAxis();
      if (axis == -1) {
        if (scales != 1)
          fail(tensor_name(i) + " is quantised per tensor but has " + std::to_string(scales) + " scales");
      } else if (axis < 0 || static_cast<size_t>(axis) >= shape.size()) {
        fail(tensor_name(i) + " has quantisation axis " + std::to_string(axis) + " outside its rank " +
             std::to_string(shape.size()));
      } else if (static_cast<int64_t>(scales) != shape[axis]) {
        fail(tensor_name(i) + " has " + std::to_string(scales) + " scales for dimension " +
             std::to_string(axis) + " of size " + std::to_string(shape[axis]));
      }
      for (float s : quant.getScale())
        if (!(std::isfinite(s) && s > 0))
          fail(tensor_name(i) + " has a quantisation scale that is not a positive number");
    }
    const uint64_t offset = t.getDataOffset(), length = t.getDataLength();
    if (length == 0) return;
    if (offset % kWeightAlignment != 0)
      fail(tensor_name(i) + " data offset " + std::to_string(offset) + " is not a multiple of 64");
    if (offset > weights_ || length > weights_ - offset)
      fail(tensor_name(i) + " data [offset " + std::to_string(offset) + ", length " + std::to_string(length) +
           "] lies outside the weights section (" + std::to_string(weights_) + " bytes)");
    if (length != elements * esize)
      fail(tensor_name(i) + " has " + std::to_string(length) + " bytes of data but its shape needs " +
           std::to_string(elements * esize) + " (" + std::to_string(elements) + " x " + dtype_text(dtype) +
           ")");
    state_[i] = kConstant;
  }

  void check_node(uint32_t j, schema::Node::Reader node, size_t n) {
    const std::string what = "node " + std::to_string(j) + quoted(node.getName());
    check_text(node.getName(), "a node name");
    check_text(node.getOp(), "an op name");
    if (node.getOp().size() == 0) fail(what + " has no op type");
    for (auto attr : node.getAttributes()) {
      check_text(attr.getName(), "an attribute name");
      if (attr.getName().size() == 0) fail(what + " has an attribute without a name");
    }
    for (uint32_t id : node.getInputs()) {
      if (id == kAbsentInput) continue;
      check_index(id, n, what + " input");
      if (state_[id] == kUnavailable)
        fail(what + " reads " + tensor_name(id) +
             " before any node computes it (a cycle or a missing producer)");
    }
    if (node.getOutputs().size() == 0) fail(what + " has no outputs");
    for (uint32_t id : node.getOutputs()) {
      check_index(id, n, what + " output");
      if (state_[id] != kUnavailable)
        fail(what + " writes " + tensor_name(id) +
             ", which is already a constant, a graph input or another node's output");
      state_[id] = kAvailable;
    }
  }

  void check_preprocess(schema::Preprocess::Reader p) const {
    if (p.getWidth() > 16384 || p.getHeight() > 16384) fail("preprocess size is over 16384 pixels");
    for (auto list : {p.getMean(), p.getStd()})
      if (list.size() != 0 && list.size() != 1 && list.size() != 3)
        fail("preprocess mean and std need 0, 1 or 3 values");
    for (float s : p.getStd())
      if (!(std::isfinite(s) && s != 0)) fail("preprocess std has a zero or non-finite value");
  }

  const std::string& file_;
  schema::Model::Reader model_;
  uint64_t weights_;
  std::vector<State> state_;
};

}  // namespace

struct ModelFile::Impl {
  std::string name;
  Mapping mapping;               // the file, when opened from a path
  kj::Array<capnp::word> owned;  // the bytes, when given in memory
  const uint8_t* bytes = nullptr;
  size_t size = 0;
  const uint8_t* weights = nullptr;
  uint64_t weights_bytes = 0;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  schema::Model::Reader model;

  [[noreturn]] void fail(const std::string& what) const { throw ModelError(name + ": " + what); }

  void parse() {
    if (size < kModelHeaderBytes)
      fail("file is " + std::to_string(size) +
           " bytes, shorter than the 64-byte header (truncated or not a model)");
    if (std::memcmp(bytes, kMagic, sizeof kMagic) != 0) fail("not a huddle model file (bad magic)");
    const uint32_t version = read_u32(bytes + 8);
    if (version != kModelFormatVersion)
      fail("format version " + std::to_string(version) + ", this build reads version " +
           std::to_string(kModelFormatVersion));
    if (read_u32(bytes + 12) != 0) fail("unknown header flags " + std::to_string(read_u32(bytes + 12)));
    const uint64_t msg_off = read_u64(bytes + 16), msg_len = read_u64(bytes + 24);
    const uint64_t w_off = read_u64(bytes + 32), w_len = read_u64(bytes + 40);
    if (msg_off != kModelHeaderBytes) fail("message offset " + std::to_string(msg_off) + " is not 64");
    if (msg_len == 0 || msg_len % 8 != 0)
      fail("message length " + std::to_string(msg_len) + " is not a positive multiple of 8");
    if (msg_len > size - msg_off)
      fail("message [" + std::to_string(msg_off) + ", +" + std::to_string(msg_len) +
           ") runs past the end of the " + std::to_string(size) + "-byte file (truncated)");
    if (w_off % kWeightAlignment != 0)
      fail("weights offset " + std::to_string(w_off) + " is not a multiple of 64");
    if (w_off < msg_off + msg_len) fail("weights section overlaps the message");
    if (w_off > size || w_len > size - w_off)
      fail("weights section [" + std::to_string(w_off) + ", +" + std::to_string(w_len) +
           ") runs past the end of the " + std::to_string(size) + "-byte file (truncated)");
    weights = bytes + w_off;
    weights_bytes = w_len;
    const kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(bytes + msg_off),
                                                msg_len / 8);
    try {
      // Validation walks the whole message once under a traversal limit, which
      // bounds the work a hostile message (pointers aliasing one another) can
      // cause. Once it has passed, reading the model again costs no more than
      // validating it did, so the reader kept for later use has no limit: a
      // limit there would only turn a later read of valid data into an error.
      capnp::ReaderOptions checked;
      checked.traversalLimitInWords = words.size() * 4 + 4096;
      checked.nestingLimit = 32;
      capnp::FlatArrayMessageReader validation(words, checked);
      Validator(name, validation.getRoot<schema::Model>(), weights_bytes).run();
      capnp::ReaderOptions unlimited;
      unlimited.traversalLimitInWords = ~uint64_t{0} / 16;
      unlimited.nestingLimit = 32;
      reader = std::make_unique<capnp::FlatArrayMessageReader>(words, unlimited);
      model = reader->getRoot<schema::Model>();
    } catch (const kj::Exception& e) {
      fail("malformed model message: " + std::string(e.getDescription().cStr()));
    }
  }
};

ModelFile::ModelFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelFile::ModelFile(ModelFile&&) noexcept = default;
ModelFile& ModelFile::operator=(ModelFile&&) noexcept = default;
ModelFile::~ModelFile() = default;

ModelFile ModelFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->name = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) impl->fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    impl->fail("not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* data = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      impl->fail(std::string("cannot map: ") + std::strerror(err));
    }
    impl->mapping = Mapping(data, size);
  }
  ::close(fd);
  impl->bytes = impl->mapping.data();
  impl->size = size;
  impl->parse();
  return ModelFile(std::move(impl));
}

ModelFile ModelFile::from_bytes(std::span<const uint8_t> bytes, const std::string& name) {
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->owned =
      kj::heapArray<capnp::word>((bytes.size() + 7) / 8);  // 8-byte aligned, as Cap'n Proto requires
  if (impl->owned.size() != 0) std::memset(impl->owned.begin(), 0, impl->owned.size() * sizeof(capnp::word));
  if (!bytes.empty()) std::memcpy(impl->owned.begin(), bytes.data(), bytes.size());
  impl->bytes = reinterpret_cast<const uint8_t*>(impl->owned.begin());
  impl->size = bytes.size();
  impl->parse();
  return ModelFile(std::move(impl));
}

schema::Model::Reader ModelFile::model() const { return impl_->model; }

std::span<const uint8_t> ModelFile::tensor_data(uint32_t index) const {
  const auto t = impl_->model.getGraph().getTensors()[index];
  // A non-constant's offset is not validated (nothing is read there): never form a pointer from it.
  if (t.getDataLength() == 0) return {};
  return {impl_->weights + t.getDataOffset(), static_cast<size_t>(t.getDataLength())};
}

const std::string& ModelFile::name() const { return impl_->name; }
size_t ModelFile::file_bytes() const { return impl_->size; }
size_t ModelFile::weights_bytes() const { return impl_->weights_bytes; }

uint64_t WeightsBuilder::append(std::span<const uint8_t> data) {
  const size_t offset = (bytes_.size() + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment;
  bytes_.resize(offset + data.size());
  if (!data.empty()) std::memcpy(bytes_.data() + offset, data.data(), data.size());
  return offset;
}

std::vector<uint8_t> serialize_model(capnp::MessageBuilder& message, std::span<const uint8_t> weights) {
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  const size_t msg_len = words.size() * sizeof(capnp::word);
  const size_t w_off =
      (kModelHeaderBytes + msg_len + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment;
  std::vector<uint8_t> out(w_off + weights.size(), 0);
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  const uint32_t version = kModelFormatVersion, flags = 0;
  const uint64_t fields[4] = {kModelHeaderBytes, msg_len, w_off, weights.size()};
  std::memcpy(out.data() + 8, &version, 4);
  std::memcpy(out.data() + 12, &flags, 4);
  std::memcpy(out.data() + 16, fields, sizeof fields);
  std::memcpy(out.data() + kModelHeaderBytes, words.begin(), msg_len);
  if (!weights.empty()) std::memcpy(out.data() + w_off, weights.data(), weights.size());
  return out;
}

void write_model_file(const std::string& path, capnp::MessageBuilder& message,
                      std::span<const uint8_t> weights) {
  write_model_bytes(path, serialize_model(message, weights));
}

void write_model_bytes(const std::string& path, std::span<const uint8_t> bytes) {
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot write: " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error(path + ": cannot write: " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": cannot write: " + std::strerror(err));
  }
}

}  // namespace huddle::engine
