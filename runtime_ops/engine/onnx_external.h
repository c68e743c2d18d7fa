// The initializers of an ONNX model whose bytes live in an external data file (TensorProto.data_location =
// EXTERNAL), read from the model's protobuf without a protobuf library: the engine hands ONNX Runtime pointers into
// its own mapping of the data file for them (weight_map.h, decoder_ort.cpp), so it needs each one's name, element
// type, shape, and offset and length in the file. Only the main graph's initializers are listed (edgebit's exports
// have no subgraphs); a tensor this does not list is loaded by ONNX Runtime itself, as before.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace edgebit::engine {

struct ExternalTensor {
    std::string name;
    std::string location;   // the data file, relative to the model's directory
    int32_t data_type = 0;  // TensorProto.DataType (= ONNXTensorElementDataType)
    std::vector<int64_t> dims;
    int64_t offset = 0;
    int64_t length = -1;    // -1: not given (the rest of the file)
};

// Throws std::runtime_error naming the model file when it is not a well-formed ModelProto.
std::vector<ExternalTensor> external_initializers(const std::string& model_path);

// Bytes of one element of a TensorProto.DataType with a fixed size; 0 for others (strings, 4-bit types...).
int64_t element_bytes(int32_t data_type);

}  // namespace edgebit::engine
