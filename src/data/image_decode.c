#include "data/image_decode.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "base/errors.h"

/* One decoded row of n pixels with `from` channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) into
 * `to` channels (1 or 3), alpha dropped, color to gray by Pillow's integer luma */
static void convert_row(const uint8_t *in, int from, uint8_t *out, int to, int n)
{
    for (int x = 0; x < n; x++) {
        const uint8_t *p = in + (size_t)x * (size_t)from;
        int color = from >= 3;
        if (to == 1) {
            out[x] = color ? (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 32768u) >> 16) : p[0];
        } else {
            out[3 * x] = p[0];
            out[3 * x + 1] = color ? p[1] : p[0];
            out[3 * x + 2] = color ? p[2] : p[0];
        }
    }
}

/* ---- PNG (libpng's classic interface: palettes expanded, 16-bit scaled, nothing gamma-corrected) ---- */

struct png_failure {
    char *why;
    size_t len;
};

static void png_error_fn(png_structp png, png_const_charp msg)
{
    struct png_failure *f = png_get_error_ptr(png);
    snprintf(f->why, f->len, "PNG: %s", msg);
    png_longjmp(png, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg)
{
    (void)png, (void)msg; /* harmless (an unknown chunk, a bad gamma): the pixels still decode */
}

static int decode_png(FILE *f, int channels, struct image *img, char *why, size_t why_len)
{
    struct png_failure failure = {why, why_len};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, png_error_fn, png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(why, why_len, "libpng cannot start");
        return -1;
    }
    uint8_t *volatile rows = NULL;
    img->pixels = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        image_free(img);
        return -1;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w == 0 || h == 0 || w > 65535 || h > 65535)
        png_error(png, "image size out of range");
    png_set_scale_16(png);
    png_set_palette_to_rgb(png);
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_packing(png);
    png_read_update_info(png, info);
    int from = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || from < 1 || from > 4 || stride != (size_t)w * (size_t)from)
        png_error(png, "unexpected layout after conversion");
    rows = malloc(stride * h);
    img->pixels = malloc((size_t)w * h * (size_t)channels);
    png_bytep *pointers = malloc(h * sizeof(png_bytep));
    if (!rows || !img->pixels || !pointers) {
        free(pointers);
        png_error(png, "out of memory");
    }
    for (png_uint_32 y = 0; y < h; y++)
        pointers[y] = rows + y * stride;
    png_read_image(png, pointers); /* interlaced images too: all passes */
    free(pointers);
    png_read_end(png, NULL);
    for (png_uint_32 y = 0; y < h; y++)
        convert_row(rows + y * stride, from, img->pixels + (size_t)y * w * (size_t)channels, channels, (int)w);
    img->width = (int)w, img->height = (int)h, img->channels = channels;
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return 0;
}

/* ---- JPEG (libjpeg's defaults: islow DCT, fancy upsampling, as Pillow) ---- */

struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char *why;
    size_t len;
};

static void jpeg_error_fn(j_common_ptr cinfo)
{
    struct jpeg_failure *f = (struct jpeg_failure *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    f->mgr.format_message(cinfo, msg);
    snprintf(f->why, f->len, "JPEG: %s", msg);
    longjmp(f->jump, 1);
}

static void jpeg_silent(j_common_ptr cinfo, int level)
{
    struct jpeg_failure *f = (struct jpeg_failure *)cinfo->err;
    /* a corrupt-data warning (premature end, bad Huffman code) means damaged pixels: refuse the
     * file as Pillow does for a truncated one, rather than train on gray filler */
    if (level < 0) {
        char msg[JMSG_LENGTH_MAX];
        f->mgr.format_message(cinfo, msg);
        snprintf(f->why, f->len, "JPEG: %s", msg);
        longjmp(f->jump, 1);
    }
}

static int decode_jpeg(FILE *f, int channels, struct image *img, char *why, size_t why_len)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_failure failure;
    cinfo.err = jpeg_std_error(&failure.mgr);
    failure.mgr.error_exit = jpeg_error_fn;
    failure.mgr.emit_message = jpeg_silent;
    failure.why = why;
    failure.len = why_len;
    uint8_t *volatile row = NULL;
    img->pixels = NULL;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        image_free(img);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    /* gray files stay gray; everything else comes out RGB (CMYK is refused by libjpeg here) */
    cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, from = cinfo.output_components;
    if (w <= 0 || h <= 0 || w > 65535 || h > 65535 || (from != 1 && from != 3)) {
        snprintf(why, why_len, "JPEG: unexpected size or components");
        longjmp(failure.jump, 1);
    }
    row = malloc((size_t)w * (size_t)from);
    img->pixels = malloc((size_t)w * (size_t)h * (size_t)channels);
    if (!row || !img->pixels) {
        snprintf(why, why_len, "out of memory");
        longjmp(failure.jump, 1);
    }
    while ((int)cinfo.output_scanline < h) {
        JSAMPROW rp = row;
        int y = (int)cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &rp, 1);
        convert_row(row, from, img->pixels + (size_t)y * (size_t)w * (size_t)channels, channels, w);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    img->width = w, img->height = h, img->channels = channels;
    return 0;
}

int image_decode(const char *path, int channels, struct image *img, char *why, size_t why_len)
{
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_len, "cannot open");
        return -1;
    }
    unsigned char magic[8] = {0};
    size_t n = fread(magic, 1, 8, f);
    rewind(f);
    int rc;
    if (n == 8 && !png_sig_cmp(magic, 0, 8)) {
        rc = decode_png(f, channels, img, why, why_len);
    } else if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
        rc = decode_jpeg(f, channels, img, why, why_len);
    } else {
        snprintf(why, why_len, "neither PNG nor JPEG");
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* TensorFlow's source coordinate for an output pixel: lower and upper index, and the weight */
static void source_at(int out, float scale, int in_size, int *lo, int *hi, float *lerp)
{
    float in = ((float)out + 0.5f) * scale - 0.5f;
    float in_f = floorf(in);
    *lo = in_f > 0 ? (int)in_f : 0;
    *hi = (int)ceilf(in) < in_size - 1 ? (int)ceilf(in) : in_size - 1;
    *hi = *hi < 0 ? 0 : *hi;
    *lerp = in - in_f;
}

void image_resize_bilinear(const struct image *in, uint8_t *out, int h, int w)
{
    int c = in->channels;
    float sy = (float)in->height / (float)h, sx = (float)in->width / (float)w;
    for (int y = 0; y < h; y++) {
        int y0, y1;
        float dy;
        source_at(y, sy, in->height, &y0, &y1, &dy);
        for (int x = 0; x < w; x++) {
            int x0, x1;
            float dx;
            source_at(x, sx, in->width, &x0, &x1, &dx);
            for (int k = 0; k < c; k++) {
                const uint8_t *p = in->pixels;
                float tl = p[((size_t)y0 * in->width + x0) * c + k], tr = p[((size_t)y0 * in->width + x1) * c + k];
                float bl = p[((size_t)y1 * in->width + x0) * c + k], br = p[((size_t)y1 * in->width + x1) * c + k];
                float top = tl + (tr - tl) * dx, bottom = bl + (br - bl) * dx;
                float v = top + (bottom - top) * dy;
                out[((size_t)y * w + x) * c + k] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)(v + 0.5f));
            }
        }
    }
}

void image_free(struct image *img)
{
    free(img->pixels);
    img->pixels = NULL;
}
