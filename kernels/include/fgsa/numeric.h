// Scalar and vector element access shared by the CUDA kernels and the CPU reference.
//
// FGSA_HD marks functions compiled for both sides: nvcc makes them __host__ __device__, g++ sees plain
// inline functions. Every element is widened to the accumulation type A on load (float on the GPU, float
// or double in the CPU reference) and narrowed once on store, so the FP16 path keeps coordinates,
// bilinear weights, softmax and accumulation in FP32.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define FGSA_HD __host__ __device__ __forceinline__
#define FGSA_UNROLL _Pragma("unroll")
#else
#define FGSA_HD inline
#define FGSA_UNROLL
#endif

namespace fgsa {

template <typename A>
FGSA_HD A widen(float x) {
    return static_cast<A>(x);
}
template <typename A>
FGSA_HD A widen(double x) {
    return static_cast<A>(x);
}

template <typename T>
FGSA_HD T narrow(float x) {
    return static_cast<T>(x);
}
template <typename T>
FGSA_HD T narrow(double x) {
    return static_cast<T>(x);
}

FGSA_HD float floor_of(float x) { return floorf(x); }
FGSA_HD double floor_of(double x) { return floor(x); }
FGSA_HD float exp_of(float x) { return expf(x); }
FGSA_HD double exp_of(double x) { return exp(x); }

// a * b rounded on its own, never fused with a following addition. nvcc (and a host compiler allowed to
// contract) turns a * b + c * d into fma(a, b, c * d): one product keeps its full precision, the other is
// rounded, so swapping the two terms can change the last bit. With both products rounded, the sum is
// commutative exactly. The host side goes through a volatile, which no compiler may fuse.
FGSA_HD float mul_rounded(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    volatile float p = a * b;
    return p;
#endif
}
FGSA_HD double mul_rounded(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    volatile double p = a * b;
    return p;
#endif
}

#ifdef __CUDACC__
// Explicit intrinsics only: torch builds with __CUDA_NO_HALF_CONVERSIONS__, so no implicit half <-> float.
template <typename A>
FGSA_HD A widen(__half x) {
    return static_cast<A>(__half2float(x));
}
template <>
FGSA_HD __half narrow<__half>(float x) {
    return __float2half_rn(x);
}
#endif

// Loads `VEC` contiguous elements starting at p and widens them. On the GPU, float x4 and half x8 are one
// 16-byte load each (the launcher only picks those widths when the addresses are 16-byte aligned).
template <int VEC, typename T, typename A>
FGSA_HD void load_vec(const T* p, A (&out)[VEC]) {
#if defined(__CUDA_ARCH__)
    if constexpr (VEC == 4 && sizeof(T) == 4) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(p));
        out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
    } else if constexpr (VEC == 8 && sizeof(T) == 2) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
        const __half2* h = reinterpret_cast<const __half2*>(&raw);
FGSA_UNROLL
        for (int i = 0; i < 4; ++i) {
            const float2 f = __half22float2(h[i]);
            out[2 * i] = f.x, out[2 * i + 1] = f.y;
        }
    } else
#endif
    {
FGSA_UNROLL
        for (int i = 0; i < VEC; ++i) out[i] = widen<A>(p[i]);
    }
}

// Narrows and stores `VEC` contiguous elements (one 16-byte store for float x4 / half x8 on the GPU).
template <int VEC, typename T, typename A>
FGSA_HD void store_vec(T* p, const A (&in)[VEC]) {
#if defined(__CUDA_ARCH__)
    if constexpr (VEC == 4 && sizeof(T) == 4) {
        *reinterpret_cast<float4*>(p) = make_float4(in[0], in[1], in[2], in[3]);
    } else if constexpr (VEC == 8 && sizeof(T) == 2) {
        uint4 raw;
        __half2* h = reinterpret_cast<__half2*>(&raw);
FGSA_UNROLL
        for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(in[2 * i], in[2 * i + 1]);
        *reinterpret_cast<uint4*>(p) = raw;
    } else
#endif
    {
FGSA_UNROLL
        for (int i = 0; i < VEC; ++i) p[i] = narrow<T>(in[i]);
    }
}

}  // namespace fgsa
