// Torch extension adapter: torch tensors -> params struct -> launcher, for GPU parity checks and benchmarks
// (kernels/tools/gpu_check.py). Built at run time by torch.utils.cpp_extension.load (kernels/torch_ext).
//
// The caller passes the output tensor, so a check can poison it first; every function writes all of it.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include <vector>

#include "fgsa/launch.h"
#include "fgsa/shapes.h"

namespace {

fgsa::DType dtype_of(const at::Tensor& t, const char* name) {
    if (t.scalar_type() == at::kFloat) return fgsa::DType::kFloat32;
    if (t.scalar_type() == at::kHalf) return fgsa::DType::kFloat16;
    TORCH_CHECK(false, name, ": expected float32 or float16, got ", t.scalar_type());
}

void check_tensor(const at::Tensor& t, const char* name, const at::Tensor& value) {
    TORCH_CHECK(t.is_cuda(), name, ": expected a CUDA tensor, got one on ", t.device());
    TORCH_CHECK(t.device() == value.device(), name, ": expected device ", value.device(), ", got ", t.device());
    TORCH_CHECK(t.is_contiguous(), name, ": expected a contiguous tensor");
}

fgsa::LevelShapes levels_of(const std::vector<int64_t>& spatial_shapes) {
    TORCH_CHECK(spatial_shapes.size() % 2 == 0, "spatial_shapes: expected (H, W) pairs flattened, got ",
                spatial_shapes.size(), " values");
    fgsa::LevelShapes levels{};
    const fgsa::Status s =
        fgsa::make_levels(spatial_shapes.data(), static_cast<int32_t>(spatial_shapes.size() / 2), &levels);
    TORCH_CHECK(s.ok, s.message);
    return levels;
}

void check_output(const at::Tensor& out, const at::Tensor& value, std::vector<int64_t> shape) {
    check_tensor(out, "out", value);
    TORCH_CHECK(out.scalar_type() == value.scalar_type(), "out: expected dtype ", value.scalar_type(), ", got ",
                out.scalar_type());
    TORCH_CHECK(out.sizes().vec() == shape, "out: expected shape ", at::IntArrayRef(shape), ", got ", out.sizes());
}

fgsa::LaunchConfig config_of(int64_t vec, int64_t groups, int64_t layout, int64_t index_bits) {
    TORCH_CHECK(layout >= 0 && layout <= 2, "layout: expected 0 (auto), 1 (team) or 2 (item), got ", layout);
    fgsa::LaunchConfig cfg;
    cfg.vec = static_cast<int32_t>(vec);
    cfg.groups = static_cast<int32_t>(groups);
    cfg.layout = static_cast<fgsa::Layout>(layout);
    cfg.index_bits = static_cast<int32_t>(index_bits);
    return cfg;
}

}  // namespace

// value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P],
// out [B, Q, M*Dh]. vec/groups = 0 lets the launcher choose.
at::Tensor msda_out(const at::Tensor& value, const at::Tensor& sampling_locations, const at::Tensor& attention_weights,
                    const std::vector<int64_t>& spatial_shapes, at::Tensor out, int64_t vec, int64_t groups,
                    int64_t layout, int64_t index_bits) {
    check_tensor(value, "value", value);
    check_tensor(sampling_locations, "sampling_locations", value);
    check_tensor(attention_weights, "attention_weights", value);
    TORCH_CHECK(value.dim() == 4 && sampling_locations.dim() == 6 && attention_weights.dim() == 5,
                "expected ranks value 4, sampling_locations 6, attention_weights 5, got ", value.dim(), ", ",
                sampling_locations.dim(), ", ", attention_weights.dim());
    fgsa::MsdaParams p{};
    const fgsa::Status s = fgsa::describe_msda(value.sizes().data(), sampling_locations.sizes().data(),
                                               attention_weights.sizes().data(), levels_of(spatial_shapes), &p);
    TORCH_CHECK(s.ok, s.message);
    check_output(out, value, {p.batch, p.num_queries, int64_t(p.num_heads) * p.head_dim});
    p.value_type = dtype_of(value, "value");
    p.coord_type = dtype_of(sampling_locations, "sampling_locations");
    TORCH_CHECK(dtype_of(attention_weights, "attention_weights") == p.coord_type,
                "attention_weights: expected the dtype of sampling_locations");
    p.value = value.data_ptr();
    p.sampling_locations = sampling_locations.data_ptr();
    p.attention_weights = attention_weights.data_ptr();
    p.output = out.data_ptr();
    const c10::cuda::CUDAGuard guard(value.device());
    const cudaError_t err = fgsa::launch_msda(p, c10::cuda::getCurrentCUDAStream().stream(),
                                             config_of(vec, groups, layout, index_bits));
    TORCH_CHECK(err == cudaSuccess, "launch_msda: ", cudaGetErrorString(err));
    return out;
}

// value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] int32, offsets [B, K, Hs*M, L, P, 2],
// logits [B, K, Hs*M, L*P], out [B, K, Hs*M*Dh].
at::Tensor fgsa_attention_out(const at::Tensor& value, const at::Tensor& ref_points, const at::Tensor& links,
                              const at::Tensor& offsets, const at::Tensor& logits,
                              const std::vector<int64_t>& spatial_shapes, at::Tensor out, int64_t vec, int64_t groups,
                              int64_t layout, int64_t index_bits) {
    check_tensor(value, "value", value);
    check_tensor(ref_points, "ref_points", value);
    check_tensor(links, "links", value);
    check_tensor(offsets, "offsets", value);
    check_tensor(logits, "logits", value);
    TORCH_CHECK(links.scalar_type() == at::kInt, "links: expected int32, got ", links.scalar_type());
    TORCH_CHECK(value.dim() == 4 && ref_points.dim() == 3 && links.dim() == 3 && offsets.dim() == 6 && logits.dim() == 4,
                "expected ranks value 4, ref_points 3, links 3, offsets 6, logits 4");
    fgsa::FgsaParams p{};
    const fgsa::Status s =
        fgsa::describe_fgsa(value.sizes().data(), ref_points.sizes().data(), links.sizes().data(),
                            offsets.sizes().data(), logits.sizes().data(), levels_of(spatial_shapes), &p);
    TORCH_CHECK(s.ok, s.message);
    check_output(out, value, {p.batch, p.num_keypoints, int64_t(p.num_side_heads) * p.heads_per_side * p.head_dim});
    p.value_type = dtype_of(value, "value");
    p.coord_type = dtype_of(ref_points, "ref_points");
    TORCH_CHECK(dtype_of(offsets, "offsets") == p.coord_type && dtype_of(logits, "logits") == p.coord_type,
                "offsets, logits: expected the dtype of ref_points");
    p.value = value.data_ptr();
    p.ref_points = ref_points.data_ptr();
    p.links = links.data_ptr<int32_t>();
    p.offsets = offsets.data_ptr();
    p.logits = logits.data_ptr();
    p.output = out.data_ptr();
    const c10::cuda::CUDAGuard guard(value.device());
    const cudaError_t err = fgsa::launch_fgsa_attention(p, c10::cuda::getCurrentCUDAStream().stream(),
                                                       config_of(vec, groups, layout, index_bits));
    TORCH_CHECK(err == cudaSuccess, "launch_fgsa_attention: ", cudaGetErrorString(err));
    return out;
}

// For gpu_check's launch-status check: leaves an unrelated error (invalid device ordinal) in this thread's
// last-error slot, as an earlier failed call of someone else would; returns its code.
int64_t leave_unrelated_error() { return static_cast<int64_t>(cudaSetDevice(-1)); }

// Returns (and clears) this thread's last CUDA error.
int64_t take_last_error() { return static_cast<int64_t>(cudaGetLastError()); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "fgsa-deploy CUDA kernels (MSDA, FGSAAttention) for GPU checks and benchmarks";
    m.def("msda_out", &msda_out, "MSDA into out", py::arg("value"), py::arg("sampling_locations"),
          py::arg("attention_weights"), py::arg("spatial_shapes"), py::arg("out"), py::arg("vec") = 0,
          py::arg("groups") = 0, py::arg("layout") = 0, py::arg("index_bits") = 0);
    m.def("fgsa_attention_out", &fgsa_attention_out, "FGSAAttention into out", py::arg("value"),
          py::arg("ref_points"), py::arg("links"), py::arg("offsets"), py::arg("logits"), py::arg("spatial_shapes"),
          py::arg("out"), py::arg("vec") = 0, py::arg("groups") = 0, py::arg("layout") = 0, py::arg("index_bits") = 0);
    m.def("leave_unrelated_error", &leave_unrelated_error, "cudaSetDevice(-1): leaves an error in the last-error slot");
    m.def("take_last_error", &take_last_error, "cudaGetLastError()");
}
