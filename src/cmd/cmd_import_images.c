/* dptrain import images DIR: a folder of class folders (Keras' image_dataset_from_directory layout)
 * into an HDF5 data set of uint8 images, with the class names kept in the file. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file_checks.h"
#include "base/h5io.h"
#include "base/timeutil.h"
#include "cmd/cli.h"
#include "data/dataset_writer.h"
#include "data/image_decode.h"
#include "data/sklearn_split.h"

const char images_import_help[] =
    "usage: dptrain import images DIR -o OUT.h5 [--size H W] [--color grayscale|rgb]\n"
    "                             [--test-split F] [--seed S] [--bad skip|refuse]\n"
    "\n"
    "Writes the images under DIR as an HDF5 data set: one subfolder per class, labels in the sorted\n"
    "order of the folder names (as Keras' image_dataset_from_directory), files found in any depth\n"
    "below them (.png, .jpg, .jpeg in any case; others are left out and counted). PNG and JPEG are\n"
    "decoded by libpng and libjpeg: a palette expanded, 16-bit scaled to 8, alpha dropped; --color\n"
    "grayscale (default rgb) takes Pillow's luma L = 0.299 R + 0.587 G + 0.114 B. --size H W resizes\n"
    "bilinearly as tf.image.resize does (half-pixel centers); without it every image must have the\n"
    "first one's size. Pixels are stored as uint8 (dptrain scales them to [0, 1]) in (N, H, W, C);\n"
    "the class names go into the file, and inspect, evaluate and predict show them. --test-split F\n"
    "puts the rows scikit-learn's train_test_split(test_size=F, random_state=S) would in /test.\n"
    "A file that does not decode is named and refused (--bad refuse, the default) or named and left\n"
    "out (--bad skip).\n";

struct image_file {
    char *path;
    int label;
};

struct images_options {
    const char *dir, *out;
    int64_t size[2];
    int channels, skip_bad;
    double test_split;
    int64_t seed;
};

static int has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entries of dir (no . and ..); NULL on failure */
static char **sorted_entries(const char *dir, int *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    int cap = 64;
    char **names = dp_malloc((size_t)cap * sizeof(char *), "file names");
    *n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (*n == cap)
            names = dp_realloc(names, (size_t)(cap *= 2) * sizeof(char *), "file names");
        names[(*n)++] = dp_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)*n, sizeof(char *), compare_names);
    return names;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The image files below dir, depth first in sorted order (Keras: each folder's files sorted, then
 * its subfolders'); others counted in *ignored */
static void collect(const char *dir, int label, struct image_file **files, int64_t *n, int64_t *cap, int64_t *ignored,
                    int depth)
{
    int count;
    char **names = sorted_entries(dir, &count);
    if (!names)
        dp_die(DP_EXIT_INPUT, "%s: cannot list: %s", dir, strerror(errno));
    for (int pass = 0; pass < 2; pass++) /* files first, then folders */
        for (int i = 0; i < count; i++) {
            char path[8192];
            if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
                dp_die(DP_EXIT_INPUT, "%s/%s: path too long", dir, names[i]);
            int folder = is_dir(path);
            if (pass == 0 && !folder) {
                if (!has_image_extension(names[i])) {
                    ++*ignored;
                    continue;
                }
                if (*n == *cap)
                    *files = dp_realloc(*files, (size_t)(*cap *= 2) * sizeof **files, "file list");
                (*files)[(*n)++] = (struct image_file){dp_strdup(path), label};
            } else if (pass == 1 && folder && depth < 32) {
                collect(path, label, files, n, cap, ignored, depth + 1);
            }
        }
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

static void parse(int argc, char **argv, struct images_options *o)
{
    memset(o, 0, sizeof *o);
    o->channels = 3;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(images_import_help, stdout);
            exit(0);
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            o->out = cli_value(argc, argv, &i, "-o");
        } else if (!strcmp(argv[i], "--size")) {
            o->size[0] = cli_int64("--size", cli_value(argc, argv, &i, "--size"), 1, 8192);
            o->size[1] = cli_int64("--size", cli_value(argc, argv, &i, "--size"), 1, 8192);
        } else if (!strcmp(argv[i], "--color")) {
            const char *v = cli_value(argc, argv, &i, "--color");
            if (strcmp(v, "grayscale") && strcmp(v, "rgb"))
                dp_die(DP_EXIT_INPUT, "import images: --color %s: grayscale or rgb", v);
            o->channels = !strcmp(v, "grayscale") ? 1 : 3;
        } else if (!strcmp(argv[i], "--bad")) {
            const char *v = cli_value(argc, argv, &i, "--bad");
            if (strcmp(v, "skip") && strcmp(v, "refuse"))
                dp_die(DP_EXIT_INPUT, "import images: --bad %s: skip or refuse", v);
            o->skip_bad = !strcmp(v, "skip");
        } else if (!strcmp(argv[i], "--test-split")) {
            o->test_split = cli_double("--test-split", cli_value(argc, argv, &i, "--test-split"), 0.0, 0.99);
        } else if (!strcmp(argv[i], "--seed")) {
            o->seed = cli_int64("--seed", cli_value(argc, argv, &i, "--seed"), 0, UINT32_MAX);
        } else if (argv[i][0] != '-' && !o->dir) {
            o->dir = argv[i];
        } else {
            cli_unknown("import images", argv[i]);
        }
    }
    if (!o->dir || !o->out)
        dp_die(DP_EXIT_INPUT, "import images: needs DIR and -o OUT.h5 (see 'dptrain import images --help')");
}

/* The progress over the files: a redrawn line on a terminal, else a line every 10 s */
static void progress(int64_t done, int64_t total, double *last, int tty)
{
    double now = time_now();
    if (done < total && now - *last < (tty ? 0.2 : 10.0))
        return;
    *last = now;
    if (tty)
        fprintf(stderr, "\rimport images: %lld/%lld files (%.0f%%)%s", (long long)done, (long long)total,
                100.0 * (double)done / (double)total, done == total ? "\n" : "");
    else if (done < total)
        fprintf(stderr, "import images: %lld/%lld files\n", (long long)done, (long long)total);
}

/* Decodes one file to the output size; 1: left out (--bad skip); dies when refused */
static int load_image(const struct images_options *o, const struct image_file *f, int64_t h, int64_t w,
                      uint8_t *out, int tty)
{
    struct image img;
    char why[300];
    if (image_decode(f->path, o->channels, &img, why, sizeof why) != 0) {
        if (tty)
            fputc('\n', stderr);
        if (!o->skip_bad)
            dp_die(DP_EXIT_INPUT, "%s: %s (leave such files out with --bad skip)", f->path, why);
        dp_warn("%s: %s; left out", f->path, why);
        return 1;
    }
    if (o->size[0]) {
        image_resize_bilinear(&img, out, (int)h, (int)w);
    } else if (img.height != h || img.width != w) {
        image_free(&img);
        dp_die(DP_EXIT_INPUT, "%s: %dx%d, but the first image is %lldx%lld (give --size H W to resize them all)",
               f->path, img.width, img.height, (long long)w, (long long)h);
    } else {
        memcpy(out, img.pixels, (size_t)(h * w * o->channels));
    }
    image_free(&img);
    return 0;
}

int cmd_import_images(int argc, char **argv)
{
    struct images_options o;
    parse(argc, argv, &o);
    struct dp_error err = {0};
    if (file_check_output(o.out, &err) != 0)
        dp_die_error(&err);
    if (!is_dir(o.dir))
        dp_die(DP_EXIT_INPUT, "%s: not a folder (import images takes a folder of class folders)", o.dir);
    int nclasses = 0, nentries;
    char **entries = sorted_entries(o.dir, &nentries);
    if (!entries)
        dp_die(DP_EXIT_INPUT, "%s: cannot list: %s", o.dir, strerror(errno));
    char **classes = dp_calloc((size_t)nentries + 1, sizeof(char *), "class names");
    int64_t cap = 1024, n = 0, ignored = 0;
    struct image_file *files = dp_malloc((size_t)cap * sizeof *files, "file list");
    for (int i = 0; i < nentries; i++) {
        char path[8192];
        if (snprintf(path, sizeof path, "%s/%s", o.dir, entries[i]) >= (int)sizeof path)
            dp_die(DP_EXIT_INPUT, "%s/%s: path too long", o.dir, entries[i]);
        if (!is_dir(path)) {
            ignored++;
            continue;
        }
        classes[nclasses] = entries[i];
        collect(path, nclasses, &files, &n, &cap, &ignored, 0);
        nclasses++;
    }
    if (nclasses < 2)
        dp_die(DP_EXIT_INPUT, "%s: %d class folder%s: a classification needs one folder per class, at least two", o.dir,
               nclasses, nclasses == 1 ? "" : "s");
    if (n == 0)
        dp_die(DP_EXIT_INPUT, "%s: no .png or .jpg files in the class folders", o.dir);

    /* the output size: --size, or the first image's */
    int64_t h = o.size[0], w = o.size[1];
    if (!h) {
        struct image first;
        char why[300];
        int64_t i = 0;
        while (i < n && image_decode(files[i].path, o.channels, &first, why, sizeof why) != 0) {
            if (!o.skip_bad)
                dp_die(DP_EXIT_INPUT, "%s: %s (leave such files out with --bad skip)", files[i].path, why);
            i++;
        }
        if (i == n)
            dp_die(DP_EXIT_INPUT, "%s: no image decodes", o.dir);
        h = first.height, w = first.width;
        image_free(&first);
    }

    uint64_t *order = dp_malloc((size_t)n * sizeof(uint64_t), "row order");
    int64_t ntest = 0;
    if (o.test_split > 0) {
        ntest = (int64_t)ceil(o.test_split * (double)n);
        if (ntest < 1 || ntest >= n)
            dp_die(DP_EXIT_INPUT, "--test-split %g leaves no training or no test images of %lld", o.test_split, (long long)n);
        sklearn_permutation(order, n, (uint32_t)o.seed);
    } else {
        for (int64_t i = 0; i < n; i++)
            order[i] = (uint64_t)i;
    }
    struct dataset_writer wr;
    if (dataset_writer_open(&wr, o.out, &err) != 0)
        dp_die_error(&err);
    h5io_attr_strings(wr.file, "class_names", (const char *const *)classes, nclasses, o.out);
    struct shape xs = {3, {h, w, o.channels}};
    size_t image_bytes = (size_t)(h * w * o.channels);
    uint8_t *pixels = dp_malloc(image_bytes, "an image");
    int tty = isatty(2);
    double last = tty ? 0 : time_now();
    int64_t done = 0, written[2] = {0, 0}, skipped = 0;
    /* scikit-learn: test = order[:ntest], train = order[ntest:] */
    for (int part = 0; part < 2; part++) {
        int64_t first = part == 0 ? ntest : 0, count = part == 0 ? n - ntest : ntest;
        if (count == 0)
            continue;
        struct split_writer s;
        dataset_writer_split(&wr, &s, part == 0 ? "train" : "test", count, &xs, X_DTYPE_UINT8, 1, 1);
        for (int64_t i = 0; i < count; i++) {
            const struct image_file *f = &files[order[first + i]];
            if (load_image(&o, f, h, w, pixels, tty) == 0) {
                int32_t label = f->label;
                split_writer_append(&s, pixels, &label, 1, o.out);
            } else {
                skipped++;
            }
            progress(++done, n, &last, tty);
        }
        split_writer_shrink(&s, s.written, o.out);
        written[part] = s.written;
        split_writer_close(&s);
    }
    if (written[0] == 0)
        dp_die(DP_EXIT_INPUT, "%s: no training image decodes", o.dir);
    if (dataset_writer_commit(&wr, &err) != 0)
        dp_die_error(&err);
    printf("%s: /train %lld images", o.out, (long long)written[0]);
    if (ntest)
        printf(", /test %lld", (long long)written[1]);
    printf(" of %lldx%lldx%d uint8; %d classes:", (long long)h, (long long)w, o.channels, nclasses);
    for (int c = 0; c < nclasses; c++)
        printf(" %d=%s", c, classes[c]);
    if (skipped)
        printf("; %lld left out (--bad skip)", (long long)skipped);
    if (ignored)
        printf("; %lld other files or folders ignored", (long long)ignored);
    printf("\n");
    for (int64_t i = 0; i < n; i++)
        free(files[i].path);
    free(files);
    for (int i = 0; i < nentries; i++)
        free(entries[i]);
    free(entries);
    free(classes);
    free(order);
    free(pixels);
    return 0;
}
