/* SHA-256 of a file's bytes, computed here (libcrypto) so neither the revision cache nor the
 * changed-file check needs the server: the hex digest is the one the history table holds. */
#ifndef LM_CHECKSUM_H
#define LM_CHECKSUM_H

#include <stddef.h>

#include "error.h"

/* Lowercase hex SHA-256 plus the NUL: what PostgreSQL's encode(sha256(x), 'hex') gives. */
#define LM_CHECKSUM_HEX 65

/* Writes the hex SHA-256 of data[0..len) to out; LM_OK or LM_ERR (libcrypto failed). */
int lm_checksum_sha256(const void *data, size_t len, char out[LM_CHECKSUM_HEX], lm_error *err);

#endif
