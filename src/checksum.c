/* SHA-256 through libcrypto's EVP interface (checksum.h). */
#include "checksum.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>

/* EVP_sha256() makes EVP_Digest look the algorithm up in the provider store on every call:
 * a third of the hashing time on a 300-byte revision file. It is fetched once per process
 * (a fleet run hashes in several threads: pthread_once; a fetched EVP_MD may be shared
 * between threads) and kept until exit. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int lm_checksum_sha256(const void *data, size_t len, char out[LM_CHECKSUM_HEX], lm_error *err) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  out[0] = '\0';
  pthread_once(&sha256_once, fetch_sha256);
  if (!sha256_md || EVP_Digest(data, len, md, &n, sha256_md, NULL) != 1 || n != 32)
    return lm_error_set(err, LM_ERR, "cannot compute a SHA-256 checksum (libcrypto failed)");
  static const char hex[] = "0123456789abcdef";
  char *w = out;
  for (unsigned int i = 0; i < n; i++) {
    *w++ = hex[md[i] >> 4];
    *w++ = hex[md[i] & 15];
  }
  *w = '\0';
  return LM_OK;
}
