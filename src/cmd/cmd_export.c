/* dptrain export CHECKPOINT -o FILE: a checkpoint's model as a whole-model Keras file
 * (keras/keras_model_file.c). */
#include <stdio.h>
#include <string.h>

#include "base/file_checks.h"
#include "cmd/cli.h"
#include "train/checkpoint_export.h"

static const char help[] =
    "usage: dptrain export CHECKPOINT -o FILE.keras|FILE.h5\n"
    "\n"
    "Writes the model of a checkpoint (best.h5, last.h5) as a whole model that Keras opens with\n"
    "keras.models.load_model: its layers, weights and compile settings (optimizer, loss, metric).\n"
    "FILE.keras is Keras 3's native format; FILE.h5 the legacy whole-model HDF5. dptrain's input\n"
    "transform goes into the model as its first layers (Rescaling(1/255) for uint8 data, and\n"
    "Normalization with the mean and variance for normalize = \"standard\"), so\n"
    "load_model(FILE).predict(raw_rows) gives what dptrain predict does. The optimizer's slot\n"
    "variables are not written (Keras does not need them); resume from the checkpoint itself.\n"
    "fit writes RUN_DIR/model.keras (and best.keras) at the end by itself.\n";

int cmd_export(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            out = cli_value(argc, argv, &i, "-o");
        } else if (argv[i][0] != '-' && !in) {
            in = argv[i];
        } else {
            cli_unknown("export", argv[i]);
        }
    }
    if (!in || !out)
        dp_die(DP_EXIT_INPUT, "export: needs CHECKPOINT and -o FILE.keras|FILE.h5 (see 'dptrain export --help')");
    struct dp_error err = {0};
    const char *inputs[1] = {in};
    if (file_check_input(in, &err) != 0 || file_check_not_input(out, inputs, 1, &err) != 0 ||
        checkpoint_export_keras(in, out, &err) != 0)
        dp_die_error(&err);
    printf("%s: the model of %s, for keras.models.load_model\n", out, in);
    return 0;
}
