// Per-triangle and per-pixel math of the fused guidance-map renderer (depth / normal / render).
//
// Every function here is `__host__ __device__`: the CUDA kernels (guidance_raster.cu) and the CPU
// host build (guidance_raster_host.cpp) run the *same* code, so CI can test the kernel's math on a
// machine without a GPU. Semantics: spec guidance_maps.md §4.2-4.6 and the raster-input contract
// (engine/guidance/raster_inputs.py). All arithmetic is float32 in the contract's operation order;
// build with FMA contraction off (nvcc/NVRTC --fmad=false, g++ -ffp-contract=off) so host, GPU and
// the numpy reference round identically.
//
// Self-contained on purpose (no std headers under NVRTC): NVRTC compiles this file at run time.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define MPRT_HD __host__ __device__ __forceinline__
#else
#define MPRT_HD inline
#endif
#if !defined(__CUDACC_RTC__)
#include <math.h>
#include <string.h>
#endif

namespace mprt {

typedef unsigned int u32;
typedef unsigned long long u64;

// Empty z-buffer entry: all ones, larger than any packed (depth, face) pair.
#define MPRT_ZBUF_EMPTY 0xFFFFFFFFFFFFFFFFull

// Two visibility passes share everything but the z-test (spec §7): the main pass (normal, render)
// at z_t - min + 20 and the depth pass at z_t - min + 10. The z-buffer holds both, B*H*W entries
// each: [main pass | depth pass].

// ---------------------------------------------------------------------------------------------
// ABI shared with Python (engine/guidance/kernel_abi.py mirrors these structs field for field).

// One batch of B frames (the RasterInputs contract), all arrays C-contiguous.
struct RasterScene {
    const float* verts;      // (B, V, 3) pytorch3d-space x, y, z
    const float* normals;    // (B, V, 3) world vertex normals
    const float* vdepth;     // (B, V)    per-vertex depth in [0, 1]
    const int* faces;        // (T, 3)
    const int* uv_faces;     // (T, 3)
    const float* uvs;        // (U, 2)
    const float* albedo;     // (3, tex_h, tex_w) RGB
    const float* sh;         // (B, 9, 3) [band, rgb]
    const float* depth_z;    // (B, V) z of the depth pass, or null: depth from the main pass
    int batch, num_verts, num_faces, num_uvs;
    int height, width, tex_h, tex_w;
};

// Where and how the resolve pass writes. Maps are NCHW; `half` stores IEEE binary16 bits.
struct GuidanceTargets {
    void* depth;         // (B, depth_channels, H, W)
    void* normal;        // (B, 3, H, W)
    void* render;        // (B, 3, H, W)
    void* alpha;         // (B, 1, H, W) or null
    int* pix_to_face;    // (B, H, W) or null (validation output)
    float* bary;         // (B, H, W, 3) or null (validation output)
    int depth_channels;  // 1 (raw) or 3 (replicated, guidance-encoder input layout)
    int half;            // 0: float32 maps, 1: float16 maps
    int quantize;        // 1: q(x)/255 (spec §4.6), 0: raw values
};

// ---------------------------------------------------------------------------------------------
// Scalars

MPRT_HD u32 float_bits(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(x);
#else
    u32 u;
    memcpy(&u, &x, sizeof u);
    return u;
#endif
}

// float32 -> binary16 bits, round to nearest even (the same integer code on host and GPU, so a
// float16 map is bit-identical across builds).
MPRT_HD unsigned short float_to_half_bits(float f) {
    const u32 x = float_bits(f);
    const u32 sign = (x >> 16) & 0x8000u;
    const u32 a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) return (unsigned short)(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520 rounds to inf
    if (a <= 0x33000000u) return (unsigned short)sign;               // <= 2^-25 rounds to 0
    if (a < 0x38800000u) {                                           // half subnormal
        const u32 mant = (a & 0x7fffffu) | 0x800000u;
        const u32 shift = 126u - (a >> 23);
        u32 r = mant >> shift;
        const u32 rem = mant & ((1u << shift) - 1u);
        const u32 halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (r & 1u))) r += 1u;
        return (unsigned short)(sign | r);
    }
    u32 h = (a >> 13) - (112u << 10);  // rebias exponent 127 -> 15
    const u32 rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h += 1u;
    return (unsigned short)(sign | h);
}

// Spec §4.6: u8 = floor(clamp(x*255 + 0.5, 0, 255)); the encoders see u8/255.
MPRT_HD float quantize_unit(float x) {
    float y = x * 255.0f + 0.5f;
    y = y < 0.0f ? 0.0f : (y > 255.0f ? 255.0f : y);
    if (!(y == y)) y = 0.0f;  // NaN: the u8 cast is undefined upstream; pick 0 (background)
    return floorf(y) / 255.0f;
}

// Depth packed for a 64-bit atomicMin: non-negative float bits order like unsigned ints, so the
// high word picks the nearest depth and the low word (face id) the lowest id on exact ties.
MPRT_HD u64 pack_depth_face(float z, int face) {
    const u32 zb = z == 0.0f ? 0u : float_bits(z);  // fold -0.0 onto +0.0
    return ((u64)zb << 32) | (u64)(u32)face;
}

MPRT_HD int unpack_face(u64 packed) { return (int)(u32)(packed & 0xFFFFFFFFull); }

// ---------------------------------------------------------------------------------------------
// Geometry (spec §4.2)

// Edge function E(p; a, b) = (p.x-a.x)(b.y-a.y) - (p.y-a.y)(b.x-a.x).
MPRT_HD float edge_fn(float px, float py, float ax, float ay, float bx, float by) {
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax);
}

// Pixel centre in pytorch3d space (spec §3.5 with the §4.2 negation): row 0 = top.
MPRT_HD float pixel_x(int col, int width) {
    return -(((2.0f * (float)col + 1.0f) / (float)width) - 1.0f);
}
MPRT_HD float pixel_y(int row, int height) {
    return -(((2.0f * (float)row + 1.0f) / (float)height) - 1.0f);
}

struct Triangle {
    float x[3], y[3], z[3];
    float zd[3];                     // z of the depth pass
    bool main_ok, depth_ok;          // the pass does not skip the face (min z >= 1e-8)
    float area_e;                    // E(v2; v0, v1) + 1e-8
    float xmin, xmax, ymin, ymax;    // xy bounding box
    int row0, row1, col0, col1;      // conservative pixel range (inclusive), empty if row0 > row1
};

// Inclusive pixel index range whose centres may fall in [lo, hi] along one axis. Centre of index
// i is 1 - (2i+1)/n, decreasing in i; one pixel of slack either side, the exact test decides.
MPRT_HD void pixel_range(float lo, float hi, int n, int* first, int* last) {
    float f = ((1.0f - hi) * (float)n - 1.0f) * 0.5f - 1.0f;
    float l = ((1.0f - lo) * (float)n - 1.0f) * 0.5f + 1.0f;
    f = f < 0.0f ? 0.0f : f;
    l = l > (float)(n - 1) ? (float)(n - 1) : l;
    if (!(f <= l)) {  // off screen or NaN
        *first = 1;
        *last = 0;
        return;
    }
    *first = (int)floorf(f);
    *last = (int)ceilf(l);
    if (*last > n - 1) *last = n - 1;
}

// Loads face f of frame b; returns false for faces both passes skip (spec §4.2: min z < 1e-8,
// |area| <= 1e-8, non-finite coordinates).
MPRT_HD bool setup_triangle(const RasterScene& s, int b, int f, Triangle* t) {
    const float* vb = s.verts + (long long)b * s.num_verts * 3;
    const float* zb = s.depth_z ? s.depth_z + (long long)b * s.num_verts : 0;
    for (int k = 0; k < 3; ++k) {
        const int vi = s.faces[f * 3 + k];
        t->x[k] = vb[vi * 3 + 0];
        t->y[k] = vb[vi * 3 + 1];
        t->z[k] = vb[vi * 3 + 2];
        t->zd[k] = zb ? zb[vi] : t->z[k];
    }
    const float zmin = fminf(fminf(t->z[0], t->z[1]), t->z[2]);
    const float zdmin = fminf(fminf(t->zd[0], t->zd[1]), t->zd[2]);
    t->main_ok = zmin >= 1e-8f;
    t->depth_ok = zdmin >= 1e-8f;
    if (!t->main_ok && !t->depth_ok) return false;
    const float area = edge_fn(t->x[2], t->y[2], t->x[0], t->y[0], t->x[1], t->y[1]);
    if (!(fabsf(area) > 1e-8f)) return false;
    t->area_e = area + 1e-8f;
    t->xmin = fminf(fminf(t->x[0], t->x[1]), t->x[2]);
    t->xmax = fmaxf(fmaxf(t->x[0], t->x[1]), t->x[2]);
    t->ymin = fminf(fminf(t->y[0], t->y[1]), t->y[2]);
    t->ymax = fmaxf(fmaxf(t->y[0], t->y[1]), t->y[2]);
    pixel_range(t->xmin, t->xmax, s.width, &t->col0, &t->col1);
    pixel_range(t->ymin, t->ymax, s.height, &t->row0, &t->row1);
    return t->row0 <= t->row1 && t->col0 <= t->col1;
}

// Barycentrics of point (px, py); true iff strictly inside (both windings). Shared by both passes.
MPRT_HD bool barycentric(const Triangle& t, float px, float py, float w[3]) {
    if (px > t.xmax || px < t.xmin || py > t.ymax || py < t.ymin) return false;
    w[0] = edge_fn(px, py, t.x[1], t.y[1], t.x[2], t.y[2]) / t.area_e;
    w[1] = edge_fn(px, py, t.x[2], t.y[2], t.x[0], t.y[0]) / t.area_e;
    w[2] = edge_fn(px, py, t.x[0], t.y[0], t.x[1], t.y[1]) / t.area_e;
    return w[0] > 0.0f && w[1] > 0.0f && w[2] > 0.0f;
}

// Interpolated z of one pass; the pixel counts for that pass iff it is >= 0.
MPRT_HD float interpolated_z(const float w[3], const float z[3]) {
    return w[0] * z[0] + w[1] * z[1] + w[2] * z[2];
}

// Both visibility passes for one triangle: offers pack(pz, f) of the main and of the depth pass for
// every covered pixel to `zmin` (a functor (pixel index within the frame, packed main, packed depth)
// -> void: atomicMin on the GPU, min on host; MPRT_ZBUF_EMPTY where a pass does not take the pixel).
template <class ZMin>
MPRT_HD void rasterize_triangle(const RasterScene& s, int b, int f, ZMin& zmin) {
    Triangle t;
    if (!setup_triangle(s, b, f, &t)) return;
    for (int r = t.row0; r <= t.row1; ++r) {
        const float py = pixel_y(r, s.height);
        for (int c = t.col0; c <= t.col1; ++c) {
            float w[3];
            if (!barycentric(t, pixel_x(c, s.width), py, w)) continue;
            const float pz = interpolated_z(w, t.z), pzd = interpolated_z(w, t.zd);
            const u64 main = t.main_ok && pz >= 0.0f ? pack_depth_face(pz, f) : MPRT_ZBUF_EMPTY;
            const u64 depth = t.depth_ok && pzd >= 0.0f ? pack_depth_face(pzd, f) : MPRT_ZBUF_EMPTY;
            if (main != MPRT_ZBUF_EMPTY || depth != MPRT_ZBUF_EMPTY)
                zmin((long long)r * s.width + c, main, depth);
        }
    }
}

// Barycentrics of the winning face of one pass at a pixel (zeros for background): the same function
// as the visibility pass, so the same bits.
MPRT_HD int winner_weights(const RasterScene& s, int b, int row, int col, u64 packed, float w[3]) {
    w[0] = w[1] = w[2] = 0.0f;
    int face = packed == MPRT_ZBUF_EMPTY ? -1 : unpack_face(packed);
    Triangle t;
    if (face >= 0 && setup_triangle(s, b, face, &t))
        barycentric(t, pixel_x(col, s.width), pixel_y(row, s.height), w);
    return face;
}

// ---------------------------------------------------------------------------------------------
// Shading (spec §4.4-4.5)

// Bilinear fetch of channel planes at texel coords (tx, ty), zero padding: grid_sample
// (bilinear, zeros, align_corners=False) with tx = u*W - 0.5, ty = (1-v)*H - 0.5.
MPRT_HD void sample_albedo(const RasterScene& s, float u, float v, float rgb[3]) {
    const float tx = u * (float)s.tex_w - 0.5f;
    const float ty = (1.0f - v) * (float)s.tex_h - 0.5f;
    for (int ch = 0; ch < 3; ++ch) rgb[ch] = 0.0f;
    // Every tap outside the texture (or NaN): all zero padding; also keeps the int casts defined.
    if (!(tx > -1.0f && tx < (float)s.tex_w && ty > -1.0f && ty < (float)s.tex_h)) return;
    const float fx0 = floorf(tx), fy0 = floorf(ty);
    const float fx1 = fx0 + 1.0f, fy1 = fy0 + 1.0f;
    const int x0 = (int)fx0, y0 = (int)fy0;
    // Tap weights formed as torch's grid_sample forms them (nw, ne, sw, se).
    const float wts[4] = {(fx1 - tx) * (fy1 - ty), (tx - fx0) * (fy1 - ty), (fx1 - tx) * (ty - fy0),
                          (tx - fx0) * (ty - fy0)};
    const int xs[4] = {x0, x0 + 1, x0, x0 + 1};
    const int ys[4] = {y0, y0, y0 + 1, y0 + 1};
    const long long plane = (long long)s.tex_h * s.tex_w;
    for (int k = 0; k < 4; ++k) {
        if (xs[k] < 0 || xs[k] >= s.tex_w || ys[k] < 0 || ys[k] >= s.tex_h) continue;
        const long long idx = (long long)ys[k] * s.tex_w + xs[k];
        for (int ch = 0; ch < 3; ++ch) rgb[ch] += wts[k] * s.albedo[ch * plane + idx];
    }
}

// 2nd-order SH shading of the (un-normalised) normal n with coefficients L[9][3].
MPRT_HD void sh_shading(const float* L, const float n[3], float out[3]) {
    const float basis[9] = {
        0.28209479f,
        1.02332671f * n[0],
        1.02332671f * n[1],
        1.02332671f * n[2],
        0.85808553f * (n[0] * n[1]),
        0.85808553f * (n[0] * n[2]),
        0.85808553f * (n[1] * n[2]),
        0.42904277f * (n[0] * n[0] - n[1] * n[1]),
        0.24770796f * (3.0f * (n[2] * n[2]) - 1.0f),
    };
    for (int ch = 0; ch < 3; ++ch) {
        float acc = 0.0f;
        for (int k = 0; k < 9; ++k) acc += L[k * 3 + ch] * basis[k];
        out[ch] = acc;
    }
}

MPRT_HD void store_map(void* base, long long idx, float v, const GuidanceTargets& o) {
    if (o.quantize) v = quantize_unit(v);
    if (o.half)
        ((unsigned short*)base)[idx] = float_to_half_bits(v);
    else
        ((float*)base)[idx] = v;
}

// Resolve pass for one pixel of frame b: re-derives each pass's winner barycentrics, interpolates
// depth from the depth pass and normal / render from the main pass, writes every target.
MPRT_HD void resolve_pixel(const RasterScene& s, const GuidanceTargets& o, int b, int row, int col,
                           u64 packed, u64 packed_depth) {
    const long long hw = (long long)s.height * s.width;
    const long long pix = (long long)row * s.width + col;
    float w[3], wd[3];
    const int face = winner_weights(s, b, row, col, packed, w);
    const int dface = winner_weights(s, b, row, col, packed_depth, wd);
    float depth = 0.0f, n[3] = {0.0f, 0.0f, 0.0f}, rgb[3] = {0.0f, 0.0f, 0.0f};
    if (dface >= 0) {
        const int* fv = s.faces + dface * 3;
        const float* db = s.vdepth + (long long)b * s.num_verts;
        depth = wd[0] * db[fv[0]] + wd[1] * db[fv[1]] + wd[2] * db[fv[2]];
    }
    if (face >= 0) {
        const int* fv = s.faces + face * 3;
        const int* fu = s.uv_faces + face * 3;
        const float* nb = s.normals + (long long)b * s.num_verts * 3;
        for (int ch = 0; ch < 3; ++ch)
            n[ch] = w[0] * nb[fv[0] * 3 + ch] + w[1] * nb[fv[1] * 3 + ch] + w[2] * nb[fv[2] * 3 + ch];
        const float u = w[0] * s.uvs[fu[0] * 2] + w[1] * s.uvs[fu[1] * 2] + w[2] * s.uvs[fu[2] * 2];
        const float v = w[0] * s.uvs[fu[0] * 2 + 1] + w[1] * s.uvs[fu[1] * 2 + 1] +
                        w[2] * s.uvs[fu[2] * 2 + 1];
        float albedo[3], shade[3];
        sample_albedo(s, u, v, albedo);
        sh_shading(s.sh + (long long)b * 27, n, shade);
        for (int ch = 0; ch < 3; ++ch) rgb[ch] = albedo[ch] * shade[ch];
    }
    for (int ch = 0; ch < o.depth_channels; ++ch)
        store_map(o.depth, (b * (long long)o.depth_channels + ch) * hw + pix, depth, o);
    for (int ch = 0; ch < 3; ++ch) {
        store_map(o.normal, (b * 3LL + ch) * hw + pix, n[ch], o);
        store_map(o.render, (b * 3LL + ch) * hw + pix, rgb[ch], o);
    }
    if (o.alpha) {
        const float a = face >= 0 ? 1.0f : 0.0f;
        if (o.half)
            ((unsigned short*)o.alpha)[b * hw + pix] = float_to_half_bits(a);
        else
            ((float*)o.alpha)[b * hw + pix] = a;
    }
    if (o.pix_to_face) o.pix_to_face[b * hw + pix] = face;
    if (o.bary)
        for (int k = 0; k < 3; ++k) o.bary[(b * hw + pix) * 3 + k] = w[k];
}

}  // namespace mprt
