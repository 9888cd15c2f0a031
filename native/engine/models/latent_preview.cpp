#include "models/latent_preview.hpp"

#include <algorithm>
#include <cmath>

#include "base/errors.hpp"
#include "base/random_generator.hpp"

namespace ovd {
namespace {

// Solves the symmetric positive definite system a x = b in place (Gaussian elimination with partial pivoting).
std::vector<double> solve(std::vector<double> a, std::vector<double> b, size_t n) {
    for (size_t col = 0; col < n; ++col) {
        size_t pivot = col;
        for (size_t r = col + 1; r < n; ++r)
            if (std::fabs(a[r * n + col]) > std::fabs(a[pivot * n + col])) pivot = r;
        for (size_t c = 0; c < n; ++c) std::swap(a[col * n + c], a[pivot * n + c]);
        std::swap(b[col], b[pivot]);
        for (size_t r = col + 1; r < n; ++r) {
            const double f = a[r * n + col] / a[col * n + col];
            for (size_t c = col; c < n; ++c) a[r * n + c] -= f * a[col * n + c];
            b[r] -= f * b[col];
        }
    }
    std::vector<double> x(n);
    for (size_t r = n; r-- > 0;) {
        double sum = b[r];
        for (size_t c = r + 1; c < n; ++c) sum -= a[r * n + c] * x[c];
        x[r] = sum / a[r * n + r];
    }
    return x;
}

// A smooth random field (a coarse grid of normals, bilinearly upsampled) plus a little fine noise, per channel.
ov::Tensor synthetic_latent(const ov::Shape& shape) {
    ov::Tensor latent(ov::element::f32, shape);
    const size_t planes = shape[0] * shape[1], h = shape[2], w = shape[3];
    const size_t gh = std::max<size_t>(2, h / 4 + 1), gw = std::max<size_t>(2, w / 4 + 1);
    RandomGenerator rng(0);
    std::vector<float> grid(gh * gw), fine(h * w);
    float* out = latent.data<float>();
    for (size_t p = 0; p < planes; ++p) {
        rng.fill_normal(grid.data(), grid.size());
        rng.fill_normal(fine.data(), fine.size());
        for (size_t y = 0; y < h; ++y) {
            const double gy = static_cast<double>(y) * static_cast<double>(gh - 1) / static_cast<double>(std::max<size_t>(1, h - 1));
            const size_t y0 = std::min(static_cast<size_t>(gy), gh - 2);
            const double fy = gy - static_cast<double>(y0);
            for (size_t x = 0; x < w; ++x) {
                const double gx = static_cast<double>(x) * static_cast<double>(gw - 1) / static_cast<double>(std::max<size_t>(1, w - 1));
                const size_t x0 = std::min(static_cast<size_t>(gx), gw - 2);
                const double fx = gx - static_cast<double>(x0);
                const double v = (1 - fy) * ((1 - fx) * grid[y0 * gw + x0] + fx * grid[y0 * gw + x0 + 1]) +
                                 fy * ((1 - fx) * grid[(y0 + 1) * gw + x0] + fx * grid[(y0 + 1) * gw + x0 + 1]);
                out[p * h * w + y * w + x] = static_cast<float>(v + 0.3 * fine[y * w + x]);
            }
        }
    }
    return latent;
}

}  // namespace

LatentPreview LatentPreview::fit(const Decode& decode, const ov::Shape& latent_shape) {
    if (latent_shape.size() != 4) throw invalid_argument("a preview takes a latent [N,C,h,w]");
    const ov::Tensor latent = synthetic_latent(latent_shape);
    const ov::Tensor image = decode(latent);
    const ov::Shape& image_shape = image.get_shape();
    const size_t n = latent_shape[0], c = latent_shape[1], h = latent_shape[2], w = latent_shape[3];
    if (image_shape.size() != 4 || image_shape[0] != n || image_shape[3] != 3 || image_shape[1] % h != 0 ||
        image_shape[1] / h != image_shape[2] / w)
        throw EngineError(ErrorCode::Runtime, "the VAE decode does not scale the latent evenly; cannot fit a preview map");
    LatentPreview preview;
    preview.m_channels = c;
    preview.m_scale = image_shape[1] / h;
    const size_t s = preview.m_scale, width = image_shape[2], k = c + 1;

    // Normal equations of rgb = W z + b over every latent pixel, the target the mean colour of its s x s block.
    std::vector<double> xtx(k * k, 0.0), xty(k * 3, 0.0), row(k);
    const float* z = latent.data<const float>();
    const uint8_t* rgb = image.data<const uint8_t>();
    for (size_t b = 0; b < n; ++b)
        for (size_t y = 0; y < h; ++y)
            for (size_t x = 0; x < w; ++x) {
                for (size_t ch = 0; ch < c; ++ch) row[ch] = z[((b * c + ch) * h + y) * w + x];
                row[c] = 1.0;
                double target[3] = {0, 0, 0};
                for (size_t dy = 0; dy < s; ++dy)
                    for (size_t dx = 0; dx < s; ++dx) {
                        const uint8_t* px = rgb + ((b * image_shape[1] + y * s + dy) * width + x * s + dx) * 3;
                        for (size_t col = 0; col < 3; ++col) target[col] += px[col];
                    }
                for (size_t i = 0; i < k; ++i) {
                    for (size_t j = 0; j < k; ++j) xtx[i * k + j] += row[i] * row[j];
                    for (size_t col = 0; col < 3; ++col) xty[col * k + i] += row[i] * target[col] / (255.0 * static_cast<double>(s * s));
                }
            }
    for (size_t i = 0; i < k; ++i) xtx[i * k + i] += 1e-6 * static_cast<double>(n * h * w);  // keeps it solvable
    for (size_t col = 0; col < 3; ++col) {
        const std::vector<double> weights = solve(xtx, std::vector<double>(xty.begin() + col * k, xty.begin() + (col + 1) * k), k);
        preview.m_weights.insert(preview.m_weights.end(), weights.begin(), weights.end());
    }
    return preview;
}

ov::Tensor LatentPreview::render(const ov::Tensor& latent) const {
    const ov::Shape& shape = latent.get_shape();
    if (shape.size() != 4 || shape[1] != m_channels)
        throw invalid_argument("the preview map was fitted for " + std::to_string(m_channels) + "-channel latents");
    const size_t n = shape[0], c = shape[1], h = shape[2], w = shape[3], k = c + 1;
    // Colours at latent resolution, then bilinear upscaling (pixel centres aligned) to the image size.
    std::vector<float> small(n * h * w * 3);
    const float* z = latent.data<const float>();
    for (size_t b = 0; b < n; ++b)
        for (size_t p = 0; p < h * w; ++p)
            for (size_t col = 0; col < 3; ++col) {
                double v = m_weights[col * k + c];
                for (size_t ch = 0; ch < c; ++ch) v += m_weights[col * k + ch] * z[(b * c + ch) * h * w + p];
                small[(b * h * w + p) * 3 + col] = static_cast<float>(std::clamp(v, 0.0, 1.0) * 255.0);
            }
    const size_t big_h = h * m_scale, big_w = w * m_scale;
    ov::Tensor out(ov::element::u8, ov::Shape{n, big_h, big_w, 3});
    uint8_t* dst = out.data<uint8_t>();
    const auto source = [&](size_t i, size_t size) {
        const double pos =
            std::clamp((static_cast<double>(i) + 0.5) / static_cast<double>(m_scale) - 0.5, 0.0, static_cast<double>(size - 1));
        const size_t lo = std::min(static_cast<size_t>(pos), size - 1);
        return std::make_pair(lo, pos - static_cast<double>(lo));
    };
    for (size_t b = 0; b < n; ++b)
        for (size_t y = 0; y < big_h; ++y) {
            const auto [y0, fy] = source(y, h);
            const size_t y1 = std::min(y0 + 1, h - 1);
            for (size_t x = 0; x < big_w; ++x) {
                const auto [x0, fx] = source(x, w);
                const size_t x1 = std::min(x0 + 1, w - 1);
                for (size_t col = 0; col < 3; ++col) {
                    const auto at = [&](size_t yy, size_t xx) { return static_cast<double>(small[(b * h * w + yy * w + xx) * 3 + col]); };
                    const double v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
                    dst[((b * big_h + y) * big_w + x) * 3 + col] = static_cast<uint8_t>(std::lround(v));
                }
            }
        }
    return out;
}

}  // namespace ovd
