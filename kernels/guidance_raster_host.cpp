// CPU host build of the fused guidance-map renderer: the same per-triangle / per-pixel functions
// as the CUDA kernels (guidance_raster_math.cuh), looped on the host. Loaded with ctypes by
// engine/guidance/kernel_host.py; this is what CI tests the kernel math with. Compile with
// -ffp-contract=off (and optionally -fopenmp).
#include <new>
#include <vector>

#include "guidance_raster_math.cuh"

namespace {

// Lock-free min: the result does not depend on the order threads arrive in (min of packed keys).
inline void atomic_min(mprt::u64* slot, mprt::u64 packed) {
    mprt::u64 cur = __atomic_load_n(slot, __ATOMIC_RELAXED);
    while (packed < cur &&
           !__atomic_compare_exchange_n(slot, &cur, packed, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

struct HostZMin {
    mprt::u64* frame;        // main pass
    mprt::u64* depth_frame;  // depth pass
    void operator()(long long pix, mprt::u64 main, mprt::u64 depth) {
        if (main != MPRT_ZBUF_EMPTY) atomic_min(frame + pix, main);
        if (depth != MPRT_ZBUF_EMPTY) atomic_min(depth_frame + pix, depth);
    }
};

}  // namespace

extern "C" {

// Layout check for the Python mirror of the ABI structs.
int mprt_guidance_abi_sizes(long long* scene_size, long long* targets_size) {
    *scene_size = (long long)sizeof(mprt::RasterScene);
    *targets_size = (long long)sizeof(mprt::GuidanceTargets);
    return 0;
}

// The maps' float16 store, exposed so tests can check it against IEEE round-to-nearest-even.
void mprt_guidance_float_to_half(const float* in, unsigned short* out, long long n) {
    for (long long i = 0; i < n; ++i) out[i] = mprt::float_to_half_bits(in[i]);
}

// Visibility passes over a caller-owned z-buffer (2*B*H*W u64: main pass, then depth pass; pre-filled
// with MPRT_ZBUF_EMPTY): the host twin of the mprt_guidance_visibility kernel.
int mprt_guidance_visibility_host(const mprt::RasterScene* scene, mprt::u64* zbuf) {
    const mprt::RasterScene& s = *scene;
    const long long hw = (long long)s.height * s.width;
    const long long tris = (long long)s.batch * s.num_faces;
#pragma omp parallel for schedule(dynamic, 256)
    for (long long i = 0; i < tris; ++i) {
        const int b = (int)(i / s.num_faces);
        HostZMin zmin{zbuf + b * hw, zbuf + ((long long)s.batch + b) * hw};
        mprt::rasterize_triangle(s, b, (int)(i - (long long)b * s.num_faces), zmin);
    }
    return 0;
}

// Resolve pass: the host twin of the mprt_guidance_resolve kernel.
int mprt_guidance_resolve_host(const mprt::RasterScene* scene, const mprt::GuidanceTargets* targets,
                               const mprt::u64* zbuf) {
    const mprt::RasterScene& s = *scene;
    const long long hw = (long long)s.height * s.width;
    const long long pixels = (long long)s.batch * hw;
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < pixels; ++i) {
        const int b = (int)(i / hw);
        const long long pix = i - b * hw;
        mprt::resolve_pixel(s, *targets, b, (int)(pix / s.width), (int)(pix % s.width), zbuf[i],
                            zbuf[pixels + i]);
    }
    return 0;
}

// Renders all frames of `scene` into `targets`. Returns 0, or 1 when the z-buffer can't be allocated.
int mprt_guidance_render_host(const mprt::RasterScene* scene, const mprt::GuidanceTargets* targets) {
    const long long pixels = (long long)scene->batch * scene->height * scene->width;
    std::vector<mprt::u64> zbuf;
    try {
        zbuf.assign((size_t)pixels * 2, MPRT_ZBUF_EMPTY);
    } catch (const std::bad_alloc&) {
        return 1;
    }
    mprt_guidance_visibility_host(scene, zbuf.data());
    return mprt_guidance_resolve_host(scene, targets, zbuf.data());
}

}  // extern "C"
