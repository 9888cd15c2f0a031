#include "base/random_generator.hpp"

#include <cmath>

namespace ovd {

RandomGenerator::RandomGenerator(uint32_t s) { seed(s); }

void RandomGenerator::seed(uint64_t s) {
    m_state[0] = static_cast<uint32_t>(s);
    for (int i = 1; i < kStateSize; ++i) m_state[i] = 1812433253u * (m_state[i - 1] ^ (m_state[i - 1] >> 30)) + static_cast<uint32_t>(i);
    m_index = kStateSize;
}

uint32_t RandomGenerator::next_u32() {
    constexpr int kShift = 397;
    constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrix = 0x9908b0dfu;
    if (m_index >= kStateSize) {
        for (int i = 0; i < kStateSize; ++i) {
            uint32_t y = (m_state[i] & kUpper) | (m_state[(i + 1) % kStateSize] & kLower);
            m_state[i] = m_state[(i + kShift) % kStateSize] ^ (y >> 1) ^ ((y & 1u) ? kMatrix : 0u);
        }
        m_index = 0;
    }
    uint32_t z = m_state[m_index++];
    z ^= z >> 11;
    z ^= (z << 7) & 0x9d2c5680u;
    z ^= (z << 15) & 0xefc60000u;
    z ^= z >> 18;
    return z;
}

float RandomGenerator::next_canonical() {
    // One 32-bit draw covers 24 mantissa bits: the value is rounded to float, then scaled by 2^-32.
    float u = static_cast<float>(next_u32()) / 4294967296.0f;
    if (u >= 1.0f) u = std::nextafter(1.0f, 0.0f);
    return u;
}

float RandomGenerator::next() {
    float value;
    if (m_has_saved) {
        m_has_saved = false;
        value = m_saved;
    } else {
        float x, y, r2;
        do {
            // libstdc++ writes `2 * u - 1.0`, so the subtraction happens in double.
            x = static_cast<float>(2.0f * next_canonical() - 1.0);
            y = static_cast<float>(2.0f * next_canonical() - 1.0);
            r2 = x * x + y * y;
        } while (r2 > 1.0f || r2 == 0.0f);
        const float mult = std::sqrt(-2.0f * std::log(r2) / r2);
        m_saved = x * mult;
        m_has_saved = true;
        value = y * mult;
    }
    return value * 1.0f + 0.0f;  // stddev 1, mean 0
}

void RandomGenerator::fill_normal(float* dst, size_t count) {
    for (size_t i = 0; i < count; ++i) dst[i] = next();
}

}  // namespace ovd
