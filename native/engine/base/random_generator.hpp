// Reproduces the oracle's default generator: std::mt19937 followed by libstdc++'s
// normal_distribution<float> (Marsaglia polar method), written out explicitly so the
// numbers do not depend on the standard library the engine is built with (see docs, RNG).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ovd {

class RandomGenerator {
public:
    explicit RandomGenerator(uint32_t seed = 42);
    virtual ~RandomGenerator() = default;

    float next();  // one N(0,1) sample
    // C order, element by element. Virtual so a test can replay recorded noise into a scheduler.
    virtual void fill_normal(float* dst, size_t count);
    void seed(uint64_t s);  // reseeds mt19937 (mod 2^32); the cached normal is kept, as in the oracle

private:
    static constexpr int kStateSize = 624;
    uint32_t m_state[kStateSize];
    int m_index = kStateSize;
    float m_saved = 0.0f;
    bool m_has_saved = false;

    uint32_t next_u32();
    float next_canonical();  // generate_canonical<float, 24>
};

}  // namespace ovd
