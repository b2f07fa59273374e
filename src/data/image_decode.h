/* Images for `dptrain import images`: PNG through libpng and JPEG through libjpeg(-turbo), told
 * apart by their first bytes, decoded to 8-bit RGB or grayscale; and the bilinear resize of
 * TensorFlow's tf.image.resize (half-pixel centers, no antialiasing), which Keras'
 * image_dataset_from_directory applies.
 *
 * Conversions, as Pillow's convert() does them: a palette is expanded, 16-bit samples are scaled
 * to 8 bits, transparency (alpha) is dropped, not composited; a color image becomes gray as
 * L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (ITU-R 601-2 luma), a gray one becomes RGB by
 * repeating it. */
#ifndef DPTRAIN_IMAGE_DECODE_H
#define DPTRAIN_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

struct image {
    int width, height, channels; /* channels 1 (gray) or 3 (RGB) */
    uint8_t *pixels;             /* (height, width, channels), malloc'd */
};

/* Decodes path into img with `channels` (1 or 3). -1 with why set (a damaged or truncated file,
 * a format that is neither PNG nor JPEG) and nothing allocated. */
int image_decode(const char *path, int channels, struct image *img, char *why, size_t why_len);

/* out (h, w, channels) from in, bilinear with half-pixel centers, rounded to the nearest integer. */
void image_resize_bilinear(const struct image *in, uint8_t *out, int h, int w);

void image_free(struct image *img);

#endif
