/* The run directory: created with its parents, older last.h5 files kept by fit.checkpoint.keep,
 * temporary files of a killed writer removed. */
#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/h5io.h"

static int strcmp_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int run_dir_create(const char *path, struct dp_error *err)
{
    /* Room for the longest name inside (last-eEEEEEE-sSSSSSSSS.h5.tmp.PID) within PATH_MAX, so no
     * file name is ever cut short. */
    const size_t longest = 4000;
    if (strlen(path) > longest)
        return dp_error_set(err, DP_EXIT_INPUT, "%.60s...: the run dir's path is too long (%zu characters; at most %zu)",
                            path, strlen(path), longest);
    char *p = dp_strdup(path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                free(p);
                return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot create directory: %s", path, strerror(errno));
            }
            *s = '/';
        }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST;
    free(p);
    if (rc)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot create directory: %s", path, strerror(errno));
    /* Said now, not when the first epoch's files are written. */
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return dp_error_set(err, DP_EXIT_INPUT, "%s: not a directory (the run dir)", path);
    if (access(path, W_OK | X_OK) != 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot write in the run dir: %s", path, strerror(errno));
    return 0;
}

/* Who holds the lock, as its holder wrote it into the lock file. */
static void read_holder(int fd, char *out, size_t len)
{
    ssize_t n = pread(fd, out, len - 1, 0);
    out[n > 0 ? n : 0] = 0;
    out[strcspn(out, "\n")] = 0;
    if (!*out)
        snprintf(out, len, "a process that has not said who it is");
}

int run_dir_lock(const char *run_dir, int wait_seconds, struct dp_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.dptrain.lock", run_dir);
    /* Kept open (not inherited by children) until the process ends: the kernel then drops the
     * lock, whatever the ending, kill -9 included. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot create the run dir's lock file: %s", path, strerror(errno));
    char holder[512];
    for (int waited = 0;; waited++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK) {
            /* a file system without locks (some NFS or Lustre mounts): go on unguarded */
            close(fd);
            return 0;
        }
        read_holder(fd, holder, sizeof holder);
        if (waited >= wait_seconds) {
            close(fd);
            return dp_error_set(err, DP_EXIT_INPUT, "%s is in use by another dptrain fit (%s); give this one "
                                "another --run-dir, or stop that one", run_dir, holder);
        }
        if (waited == 0)
            printf("Waiting up to %d s for %s, in use by %s (a requeued job's predecessor ending?)\n", wait_seconds,
                   run_dir, holder);
        fflush(stdout);
        sleep(1);
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "an unknown host");
    const char *job = getenv("SLURM_JOB_ID");
    char since[64] = "";
    time_t now = time(NULL);
    struct tm utc;
    strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &utc));
    char line[512];
    int n = snprintf(line, sizeof line, "pid %ld on %s%s%s, since %s\n", (long)getpid(), host,
                     job ? ", Slurm job " : "", job ? job : "", since);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n)
        dp_warn("%s: cannot record this run in the lock file", path);
    return 0;
}

/* Keeps up to fit.checkpoint.keep older last.h5 files as last-eEEEEEE-sSSSSSSSS.h5 (hard links,
 * made before the new last.h5 is renamed over the old one). */
void run_dir_remove_if_unused(const char *run_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.dptrain.lock", run_dir);
    unlink(path);
    rmdir(run_dir); /* fails, leaving it, when anything else is inside */
}

void run_dir_keep_previous(const char *run_dir, const char *path_last, int64_t keep)
{
    if (keep <= 0 || access(path_last, F_OK) != 0)
        return;
    struct dp_error err;
    hid_t f = h5io_open_read(path_last, &err);
    if (f < 0)
        return;
    int64_t epoch = 0, step = 0;
    hid_t d = H5Gopen2(f, "dptrain", H5P_DEFAULT);
    if (d >= 0) {
        h5io_read_attr_i64(d, "epoch", &epoch, path_last, NULL);
        h5io_read_attr_i64(d, "step_in_epoch", &step, path_last, NULL);
        H5Gclose(d);
    }
    H5Fclose(f);
    char kept[4200];
    snprintf(kept, sizeof kept, "%s/last-e%06lld-s%08lld.h5", run_dir, (long long)epoch, (long long)step);
    unlink(kept);
    if (link(path_last, kept) != 0)
        return;
    /* Prune: names sort chronologically; remove all but the newest `keep`. */
    DIR *dir = opendir(run_dir);
    if (!dir)
        return;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "last-e", 6) || !strstr(e->d_name, ".h5") || atomic_file_is_temp_name(e->d_name))
            continue;
        names = dp_realloc(names, (n + 1) * sizeof(char *), "file names");
        names[n++] = dp_strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof(char *), strcmp_ptr);
    for (size_t i = 0; i + (size_t)keep < n; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", run_dir, names[i]);
        unlink(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Leftovers of a process killed while writing: temporary files are never valid checkpoints. */
void run_dir_remove_temporaries(const char *run_dir)
{
    DIR *dir = opendir(run_dir);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!atomic_file_is_temp_name(e->d_name))
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
        unlink(path);
    }
    closedir(dir);
}
