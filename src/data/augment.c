#include "data/augment.h"

#include <math.h>
#include <string.h>

#include "base/rng.h"

const char *const augment_kind_names[AUGMENT_COUNT + 1] = {
    [AUGMENT_FLIP] = "random_flip", [AUGMENT_TRANSLATION] = "random_translation", [AUGMENT_ZOOM] = "random_zoom",
    [AUGMENT_ROTATION] = "random_rotation", [AUGMENT_COUNT] = NULL,
};
const char *const augment_fill_names[] = {"reflect", "wrap", "nearest", "constant", NULL};

/* An index outside [0, n) brought inside by the fill mode; -1 for constant */
static int64_t fill_index(int64_t i, int64_t n, enum augment_fill fill)
{
    if (i >= 0 && i < n)
        return i;
    switch (fill) {
    case AUGMENT_FILL_REFLECT: { /* period 2n, mirrored about the edge between pixels */
        int64_t m = i % (2 * n);
        m = m < 0 ? m + 2 * n : m;
        return m < n ? m : 2 * n - 1 - m;
    }
    case AUGMENT_FILL_WRAP: {
        int64_t m = i % n;
        return m < 0 ? m + n : m;
    }
    case AUGMENT_FILL_NEAREST:
        return i < 0 ? 0 : n - 1;
    default:
        return -1;
    }
}

static float pixel(const float *img, int64_t w, int64_t h, int64_t c, int64_t x, int64_t y, int64_t k,
                   const struct augment_spec *s)
{
    int64_t xi = fill_index(x, w, s->fill), yi = fill_index(y, h, s->fill);
    return xi < 0 || yi < 0 ? s->fill_value : img[(yi * w + xi) * c + k];
}

/* out(x, y) = in(a x + b y + tx, d x + e y + ty) for every pixel and channel */
static void affine(const float *in, float *out, const struct shape *shape, const double m[6],
                   const struct augment_spec *s)
{
    int64_t h = shape->dims[0], w = shape->dims[1], c = shape->dims[2];
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            double sx = m[0] * (double)x + m[1] * (double)y + m[2], sy = m[3] * (double)x + m[4] * (double)y + m[5];
            float *o = out + (y * w + x) * c;
            if (s->nearest) {
                int64_t xi = (int64_t)floor(sx + 0.5), yi = (int64_t)floor(sy + 0.5);
                for (int64_t k = 0; k < c; k++)
                    o[k] = pixel(in, w, h, c, xi, yi, k, s);
                continue;
            }
            int64_t x0 = (int64_t)floor(sx), y0 = (int64_t)floor(sy);
            float fx = (float)(sx - (double)x0), fy = (float)(sy - (double)y0);
            for (int64_t k = 0; k < c; k++) {
                float tl = pixel(in, w, h, c, x0, y0, k, s), tr = pixel(in, w, h, c, x0 + 1, y0, k, s);
                float bl = pixel(in, w, h, c, x0, y0 + 1, k, s), br = pixel(in, w, h, c, x0 + 1, y0 + 1, k, s);
                float top = tl + (tr - tl) * fx, bottom = bl + (br - bl) * fx;
                o[k] = top + (bottom - top) * fy;
            }
        }
}

static double between(const double range[2], uint32_t word)
{
    return range[0] + (range[1] - range[0]) * (double)rng_u32_to_unit_float(word);
}

/* One layer on one image: in place, through scratch */
static void augment_one(const struct augment_spec *s, const struct shape *shape, float *img, float *scratch,
                        const uint32_t r[4])
{
    int64_t h = shape->dims[0], w = shape->dims[1], c = shape->dims[2];
    double cx = (double)(w - 1) / 2, cy = (double)(h - 1) / 2;
    double m[6] = {1, 0, 0, 0, 1, 0};
    switch (s->kind) {
    case AUGMENT_FLIP: {
        int fh = s->flip_horizontal && (r[0] & 1), fv = s->flip_vertical && (r[1] & 1);
        if (!fh && !fv)
            return;
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                memcpy(scratch + (y * w + x) * c, img + ((fv ? h - 1 - y : y) * w + (fh ? w - 1 - x : x)) * c,
                       (size_t)c * sizeof(float));
        memcpy(img, scratch, (size_t)(h * w * c) * sizeof(float));
        return;
    }
    case AUGMENT_TRANSLATION: {
        double dy = between(s->height, r[0]) * (double)h, dx = between(s->width, r[1]) * (double)w;
        m[2] = -dx, m[5] = -dy;
        break;
    }
    case AUGMENT_ZOOM: {
        double zy = 1.0 + between(s->height, r[0]), zx = s->width_given ? 1.0 + between(s->width, r[1]) : zy;
        m[0] = zx, m[2] = cx - zx * cx;
        m[4] = zy, m[5] = cy - zy * cy;
        break;
    }
    case AUGMENT_ROTATION: {
        double a = between(s->turn, r[0]) * 2.0 * M_PI, co = cos(a), si = sin(a);
        m[0] = co, m[1] = -si, m[2] = cx - co * cx + si * cy;
        m[3] = si, m[4] = co, m[5] = cy - si * cx - co * cy;
        break;
    }
    default:
        return;
    }
    affine(img, scratch, shape, m, s);
    memcpy(img, scratch, (size_t)(h * w * c) * sizeof(float));
}

void augment_batch(const struct augment_spec *specs, int n, const struct shape *shape, float *x, int64_t rows,
                   const int64_t *sample_ids, uint64_t seed, int64_t epoch, float *scratch)
{
    int64_t size = shape->dims[0] * shape->dims[1] * shape->dims[2];
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) {
            uint32_t words[4];
            rng_block(words, seed, RNG_DOMAIN_AUGMENT | (uint32_t)i << 8, (uint32_t)epoch, (uint64_t)sample_ids[r]);
            augment_one(&specs[i], shape, x + r * size, scratch, words);
        }
}
