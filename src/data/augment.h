/* Image augmentation during training, with the semantics of Keras' RandomFlip,
 * RandomTranslation, RandomZoom and RandomRotation layers, applied to the host batch of model
 * inputs (channels-last images, after scaling and normalization) before it goes to the device;
 * never to validation, evaluate or predict rows.
 *
 * Every draw is keyed by (seed, RNG_DOMAIN_AUGMENT with the layer's position, epoch, the sample's
 * global row index), so 1 and P ranks, and a run resumed mid-epoch, see the same images.
 *
 * Geometry as Keras: an output pixel (x, y) takes the input at the inverse transform of it about
 * the image's center ((W-1)/2, (H-1)/2); translation shifts by a fraction of the height and width
 * (positive: down and right); zoom scales by 1 + f (positive f: zoom out); rotation turns by a
 * fraction of a full turn (positive: counter-clockwise). Points outside the image take the fill
 * mode: reflect (d c b a | a b c d | d c b a, Keras' default), wrap, nearest, or constant
 * (fill_value); sampling is bilinear (default) or nearest. */
#ifndef DPTRAIN_AUGMENT_H
#define DPTRAIN_AUGMENT_H

#include <stdint.h>

#include "data/dataset.h"

enum augment_kind { AUGMENT_FLIP, AUGMENT_TRANSLATION, AUGMENT_ZOOM, AUGMENT_ROTATION, AUGMENT_COUNT };
enum augment_fill { AUGMENT_FILL_REFLECT, AUGMENT_FILL_WRAP, AUGMENT_FILL_NEAREST, AUGMENT_FILL_CONSTANT };

extern const char *const augment_kind_names[AUGMENT_COUNT + 1]; /* "random_flip", ... */
extern const char *const augment_fill_names[];                  /* "reflect", "wrap", "nearest", "constant" */

struct augment_spec {
    enum augment_kind kind;
    int line;                       /* job file line, for messages */
    int flip_horizontal, flip_vertical;
    double height[2], width[2];     /* translation and zoom: [lower, upper] fractions */
    int width_given;                /* zoom: width_factor given (else the height's draw, aspect kept) */
    double turn[2];                 /* rotation: [lower, upper] fractions of a full turn */
    enum augment_fill fill;
    float fill_value;
    int nearest;                    /* interpolation = "nearest" (else bilinear) */
};

/* Applies specs in order to rows samples of x (rows, h, w, c) in place. scratch: h * w * c
 * floats. sample_ids: the rows' global indices. */
void augment_batch(const struct augment_spec *specs, int n, const struct shape *shape, float *x, int64_t rows,
                   const int64_t *sample_ids, uint64_t seed, int64_t epoch, float *scratch);

#endif
