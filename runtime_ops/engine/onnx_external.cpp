#include "onnx_external.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace edgebit::engine {
namespace {

// Field numbers of onnx.proto3 (ModelProto.graph, GraphProto.initializer, TensorProto fields).
constexpr uint32_t kModelGraph = 7, kGraphInitializer = 5;
constexpr uint32_t kTensorDims = 1, kTensorDataType = 2, kTensorName = 8, kTensorExternalData = 13,
                   kTensorDataLocation = 14;
constexpr uint64_t kLocationExternal = 1;

// A protobuf message between two pointers, read field by field.
struct Reader {
    const uint8_t* p;
    const uint8_t* end;
    const std::string* file;

    [[noreturn]] void fail(const char* what) const {
        throw std::runtime_error(*file + ": cannot load it: not a well-formed ONNX model (" + what + ")");
    }
    bool done() const { return p >= end; }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p >= end) fail("varint past the end of its message");
            const uint8_t b = *p++;
            v |= static_cast<uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        fail("varint longer than 10 bytes");
    }
    Reader sub() {  // a length-delimited field's bytes
        const uint64_t n = varint();
        if (n > static_cast<uint64_t>(end - p)) fail("field longer than its message");
        Reader r{p, p + n, file};
        p += n;
        return r;
    }
    std::string str() {
        Reader r = sub();
        return std::string(reinterpret_cast<const char*>(r.p), static_cast<size_t>(r.end - r.p));
    }
    void skip(uint32_t wire) {
        switch (wire) {
            case 0: varint(); return;
            case 1: if (end - p < 8) fail("fixed64 past the end"); p += 8; return;
            case 2: sub(); return;
            case 5: if (end - p < 4) fail("fixed32 past the end"); p += 4; return;
            default: fail("unsupported wire type");
        }
    }
};

int64_t to_int(const std::string& s, const ExternalTensor& t, const std::string& file, const char* key) {
    size_t used = 0;
    long long v = -1;
    try {
        v = std::stoll(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != s.size() || v < 0)
        throw std::runtime_error(file + ": initializer '" + t.name + "' has external_data " + key + " '" + s +
                                 "' (a non-negative integer was expected)");
    return v;
}

bool tensor(Reader r, ExternalTensor* t) {
    uint64_t location = 0;
    std::string offset, length;
    while (!r.done()) {
        const uint64_t key = r.varint();
        const uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
        if (field == kTensorDims && wire == 0) {
            t->dims.push_back(static_cast<int64_t>(r.varint()));
        } else if (field == kTensorDims && wire == 2) {  // packed
            Reader d = r.sub();
            while (!d.done()) t->dims.push_back(static_cast<int64_t>(d.varint()));
        } else if (field == kTensorDataType && wire == 0) {
            t->data_type = static_cast<int32_t>(r.varint());
        } else if (field == kTensorName && wire == 2) {
            t->name = r.str();
        } else if (field == kTensorDataLocation && wire == 0) {
            location = r.varint();
        } else if (field == kTensorExternalData && wire == 2) {
            Reader e = r.sub();
            std::string k, v;
            while (!e.done()) {
                const uint64_t ek = e.varint();
                if ((ek >> 3) == 1 && (ek & 7) == 2) k = e.str();
                else if ((ek >> 3) == 2 && (ek & 7) == 2) v = e.str();
                else e.skip(static_cast<uint32_t>(ek & 7));
            }
            if (k == "location") t->location = v;
            else if (k == "offset") offset = v;
            else if (k == "length") length = v;
        } else {
            r.skip(wire);
        }
    }
    if (location != kLocationExternal) return false;
    if (t->location.empty())
        throw std::runtime_error(*r.file + ": initializer '" + t->name + "' is external but names no location");
    t->offset = offset.empty() ? 0 : to_int(offset, *t, *r.file, "offset");
    t->length = length.empty() ? -1 : to_int(length, *t, *r.file, "length");
    return true;
}

}  // namespace

int64_t element_bytes(int32_t data_type) {
    switch (data_type) {
        case 2: case 3: case 9: return 1;          // uint8, int8, bool
        case 4: case 5: case 10: case 16: return 2;  // uint16, int16, float16, bfloat16
        case 1: case 6: case 12: return 4;          // float, int32, uint32
        case 7: case 11: case 13: return 8;         // int64, double, uint64
        default: return 0;
    }
}

std::vector<ExternalTensor> external_initializers(const std::string& model_path) {
    std::ifstream in(model_path, std::ios::binary);
    if (!in) throw std::runtime_error(model_path + ": cannot read the ONNX model");
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<ExternalTensor> out;
    Reader model{bytes.data(), bytes.data() + bytes.size(), &model_path};
    while (!model.done()) {
        const uint64_t key = model.varint();
        if ((key >> 3) != kModelGraph || (key & 7) != 2) {
            model.skip(static_cast<uint32_t>(key & 7));
            continue;
        }
        Reader graph = model.sub();
        while (!graph.done()) {
            const uint64_t gk = graph.varint();
            if ((gk >> 3) != kGraphInitializer || (gk & 7) != 2) {
                graph.skip(static_cast<uint32_t>(gk & 7));
                continue;
            }
            ExternalTensor t;
            if (tensor(graph.sub(), &t)) out.push_back(std::move(t));
        }
    }
    return out;
}

}  // namespace edgebit::engine
