// IEEE binary16 storage on the host, for the ONNX Runtime adapter's float16 tensors.
//
// The sampling code (fgsa/sampling.h) widens every element with `widen<A>(x)` and the GPU build gets
// __half overloads from cuda_fp16.h; the host has no standard half type, so this header gives `Half` the
// same two conversions. They are found by argument-dependent lookup, so sampling.h needs no change. Values
// are widened exactly; narrowing rounds to nearest even, overflows to infinity and keeps NaN, like
// __float2half_rn on the GPU. Integer bit manipulation only: no F16C requirement, no FTZ/DAZ sensitivity.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace fgsa::ort {

struct Half {
    uint16_t bits;
};

inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1fu) {  // infinity or NaN (payload kept)
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {  // normal: rebias 15 -> 127
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {  // signed zero
        bits = sign;
    } else {  // subnormal m * 2^-24: normalise into a float normal
        int shift = 0;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            ++shift;
        }
        bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, sizeof x);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u);  // inf; NaN stays quiet NaN
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds past the largest half (65504)
    if (ax < 0x38800000u) {                        // below 2^-14: a half subnormal (or zero)
        // m * 2^-24 with m = round-half-even(|f| * 2^24); m = 1024 is the smallest normal's encoding.
        const float scaled = std::fabs(f) * 16777216.0f;
        return sign | static_cast<uint16_t>(std::nearbyint(scaled));
    }
    // Normal: round the 23-bit mantissa to 10 bits (nearest even); a carry bumps the exponent correctly.
    const uint32_t rounded = (ax + 0xfffu + ((ax >> 13) & 1u)) >> 13;
    return sign | static_cast<uint16_t>(rounded - (112u << 10));
}

// The conversions sampling.h calls (found by argument-dependent lookup on Half).
template <typename A>
inline A widen(Half x) {
    return static_cast<A>(half_to_float(x.bits));
}

// Store conversions of the adapter's output loop.
inline void store(float* p, float v) { *p = v; }
inline void store(Half* p, float v) { p->bits = float_to_half(v); }

}  // namespace fgsa::ort
