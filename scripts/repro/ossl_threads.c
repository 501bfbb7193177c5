/* Minimal reproduction for the README's benchmark section: does OpenSSL 3 alone, with
 * no token and no provider but the default one, scale ECDSA P-256 signing over threads
 * in one process? Each thread has its own key and its own prepared context (the digest
 * fetched once with EVP_MD_fetch, EVP_DigestSignInit once, EVP_MD_CTX_copy_ex per
 * signature), the pattern OpenSSL's performance guide recommends; the same work in
 * forked processes is the comparison.
 *
 *   cc -O2 -o ossl_threads ossl_threads.c -lcrypto -lpthread
 *   ./ossl_threads 20000 9      # signatures per thread/process, rounds
 *
 * Each round measures 1 thread, N threads and N processes back to back (N = the online
 * cores); the medians of the rounds' ratios are printed, as the machine's speed drifts.
 */
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static EVP_MD *md;
static long count;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *work(void *arg) {
    (void)arg;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    EVP_MD_CTX *tmpl = EVP_MD_CTX_new(), *ctx = EVP_MD_CTX_new();
    unsigned char msg[] = "hsm-demo bench message", sig[80];
    if (!key || !tmpl || !ctx || EVP_DigestSignInit(tmpl, NULL, md, NULL, key) != 1) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    for (long i = 0; i < count; i++) {
        size_t len = sizeof sig;
        if (EVP_MD_CTX_copy_ex(ctx, tmpl) != 1 || EVP_DigestSign(ctx, sig, &len, msg, sizeof msg) != 1) {
            ERR_print_errors_fp(stderr);
            exit(1);
        }
    }
    EVP_MD_CTX_free(ctx);
    EVP_MD_CTX_free(tmpl);
    EVP_PKEY_free(key);
    return NULL;
}

static double threads(int n) {
    pthread_t t[n];
    double start = now();
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return n * count / (now() - start);
}

static double processes(int n) {
    double start = now();
    for (int i = 0; i < n; i++)
        if (fork() == 0) {
            work(NULL);
            _exit(0);
        }
    for (int i = 0; i < n; i++)
        wait(NULL);
    return n * count / (now() - start);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    count = argc > 1 ? atol(argv[1]) : 20000;
    int rounds = argc > 2 ? atoi(argv[2]) : 9;
    if (rounds < 1 || rounds > 99)
        rounds = 9;
    md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    int n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double one[99], t[99], p[99];
    for (int r = 0; r < rounds; r++) {
        one[r] = threads(1);
        double many = threads(n), procs = processes(n);
        t[r] = many / one[r];
        p[r] = procs / one[r];
    }
    double m1 = median(one, rounds), mt = median(t, rounds), mp = median(p, rounds);
    printf("OpenSSL %s, %d cores, %ld ECDSA P-256 signatures per worker, prepared contexts, %d rounds\n",
           OpenSSL_version(OPENSSL_VERSION), n, count, rounds);
    printf("  1 thread:     %8.0f signatures/s (median)\n", m1);
    printf("  %d threads:    %5.2fx one thread (median; min %.2f, max %.2f)\n", n, mt, t[0], t[rounds - 1]);
    printf("  %d processes:  %5.2fx one thread (median; min %.2f, max %.2f)\n", n, mp, p[0], p[rounds - 1]);
    return 0;
}
