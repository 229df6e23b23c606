/* SHA-256 through libcrypto's EVP interface (checksum.h). */
#include "checksum.h"

#include <openssl/evp.h>
#include <stdio.h>

int lm_checksum_sha256(const void *data, size_t len, char out[LM_CHECKSUM_HEX], lm_error *err) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  out[0] = '\0';
  if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
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
