// CUDA kernels of the fused guidance-map renderer: a visibility pass (one thread per triangle and
// frame, 64-bit atomicMin of packed depth|face into a z-buffer) and a resolve pass (one thread per
// pixel and frame) that interpolates, shades and writes depth / normal / render / alpha straight
// into the guidance encoders' NCHW layout. The math is in guidance_raster_math.cuh (shared with
// the CPU host build that CI tests). Built by CMake (nvcc -fatbin) or at run time by NVRTC
// (engine/guidance/kernel_nvrtc.py); both must use --fmad=false (see the header).
//
// Launch contract (engine/guidance/kernel_cuda.py):
//   zbuf (2*B*H*W u64: main pass, then depth pass) filled with 0xFF bytes (MPRT_ZBUF_EMPTY), then
//   mprt_guidance_visibility<<<ceil(B*T / 256), 256>>>(scene, zbuf)
//   mprt_guidance_resolve<<<ceil(B*H*W / 256), 256>>>(scene, targets, zbuf)
#include "guidance_raster_math.cuh"

namespace {

struct AtomicZMin {
    unsigned long long* frame;        // main pass
    unsigned long long* depth_frame;  // depth pass
    __device__ void operator()(long long pix, unsigned long long main, unsigned long long depth) {
        if (main != MPRT_ZBUF_EMPTY) atomicMin(frame + pix, main);
        if (depth != MPRT_ZBUF_EMPTY) atomicMin(depth_frame + pix, depth);
    }
};

}  // namespace

extern "C" __global__ void mprt_guidance_visibility(mprt::RasterScene s, unsigned long long* zbuf) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)s.batch * s.num_faces) return;
    const int b = (int)(i / s.num_faces);
    const int f = (int)(i - (long long)b * s.num_faces);
    const long long hw = (long long)s.height * s.width;
    AtomicZMin zmin{zbuf + b * hw, zbuf + ((long long)s.batch + b) * hw};
    mprt::rasterize_triangle(s, b, f, zmin);
}

extern "C" __global__ void mprt_guidance_resolve(mprt::RasterScene s, mprt::GuidanceTargets o,
                                                 const unsigned long long* zbuf) {
    const long long hw = (long long)s.height * s.width;
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)s.batch * hw) return;
    const int b = (int)(i / hw);
    const long long pix = i - b * hw;
    mprt::resolve_pixel(s, o, b, (int)(pix / s.width), (int)(pix % s.width), zbuf[i],
                        zbuf[(long long)s.batch * hw + i]);
}
